"""Every source, read from its tool's own on-disk format (written here, no download), yields the
same batches: the same decoded images and classes, the cache and the per-batch path alike; bad
records are skipped like bad files; a missing extra or dataset is one line."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import formats
from dcgan.data.folder import ImageFolderDataModule
from dcgan.data.huggingface import HuggingFaceDataModule
from dcgan.data.module import ImageDataModule
from dcgan.data.torchvision import TorchvisionDataModule
from dcgan.data.zip import ZipDataModule
from dcgan.errors import UsageError
from train import train

pytestmark = pytest.mark.filterwarnings("ignore:.*(does not have many workers|Dataset not found).*")


def pictures(size: int, channels: int = 3, count: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, channels), dtype=np.uint8)


LABELS = np.array([0, 1, 2, 0, 1, 2])


def decoded(dm: ImageDataModule) -> list[tuple[bytes, str | None]]:
    """The images a DataModule trains on, each with its class name, in the source's order."""
    dm.setup("fit")
    images = dm.images if dm.tier else torch.stack([dm.dataset.image(i) for i in range(len(dm.dataset))])
    labels = dm.image_labels if dm.tier else dm.dataset.labels
    names = [dm.classes[int(label)] for label in labels] if dm.labels else [None] * len(images)
    return [(image.numpy().tobytes(), name) for image, name in zip(images, names)]


@pytest.mark.parametrize("cache", ["device", False])
def test_every_source_yields_the_same_images_and_classes(tmp_path: Path, cache):
    images = pictures(32)
    options = dict(image_size=32, batch_size=2, num_workers=0, cache=cache, labels=True)
    modules = {
        "folder": ImageFolderDataModule(str(formats.folder(tmp_path / "folder", images, LABELS)), **options),
        "zip": ZipDataModule(str(formats.stylegan_zip(tmp_path / "data.zip", images, LABELS)), **options),
        "CIFAR10": TorchvisionDataModule("CIFAR10", str(formats.cifar(tmp_path / "c10", images, LABELS)), **options),
        "CIFAR100": TorchvisionDataModule("CIFAR100", str(formats.cifar(tmp_path / "c100", images, LABELS, True)),
                                          **options),
        "huggingface": HuggingFaceDataModule(str(formats.huggingface(tmp_path / "hf", images, LABELS)), **options),
        "imagefolder": HuggingFaceDataModule(str(tmp_path / "folder"), root=str(tmp_path / "hf-cache"), **options),
    }
    expected = sorted((image.transpose(2, 0, 1).tobytes(), f"class{label}") for image, label in zip(images, LABELS))
    for name, dm in modules.items():
        got = decoded(dm)
        zip_names = name == "zip"  # dataset.json's classes are numbers
        assert sorted((image, f"class{label}" if zip_names else label) for image, label in got) == expected, name


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_mnist_idx_files_are_read_with_their_classes(tmp_path: Path, name: str):
    images = pictures(28, channels=1)
    root = formats.mnist(tmp_path, images, LABELS, kind=name)
    dm = TorchvisionDataModule(name, str(root), image_size=28, channels=1, batch_size=2, num_workers=0, labels=True)
    dm.setup("fit")
    assert torch.equal(dm.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert dm.image_labels.tolist() == LABELS.tolist() and len(dm.classes) == 10


def test_stl10_and_celeba_binaries_and_list_files_are_read(tmp_path: Path):
    images = pictures(96, count=4)
    stl = TorchvisionDataModule("STL10", str(formats.stl10(tmp_path / "stl", images, LABELS[:4])), image_size=96,
                                batch_size=2, num_workers=0, labels=True)
    stl.setup("fit")
    assert torch.equal(stl.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert stl.image_labels.tolist() == LABELS[:4].tolist() and stl.classes[0] == "class0"
    faces = TorchvisionDataModule("CelebA", str(formats.celeba(tmp_path / "celeba", images)), image_size=96,
                                  batch_size=2, num_workers=0)
    faces.setup("fit")
    assert torch.equal(faces.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    with pytest.raises(UsageError, match="has no class labels"):
        TorchvisionDataModule("CelebA", str(tmp_path / "celeba"), labels=True).classes


def test_an_lsun_lmdb_is_read_and_a_corrupt_record_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # torchvision's LSUN keeps its list of keys in the working directory
    images = pictures(32)
    root = formats.lsun(tmp_path / "lsun", images, corrupt=2)
    dm = TorchvisionDataModule("LSUN", str(root), split="bedroom_train", image_size=32, batch_size=2, num_workers=0,
                               labels=True)
    with pytest.warns(UserWarning, match="skipped 1 images of data.name=LSUN .* LSUN bedroom_train record 2"):
        dm.setup("fit")
    assert torch.equal(dm.images, torch.from_numpy(images[[0, 1, 3, 4, 5]]).permute(0, 3, 1, 2))
    assert dm.classes == ["bedroom_train"] and dm.image_labels.tolist() == [0] * 5


def test_a_stylegan_zip_is_read_in_place_with_its_labels_and_corrupt_members_skipped(tmp_path: Path):
    images = pictures(16)
    path = formats.stylegan_zip(tmp_path / "ffhq.zip", images, LABELS, corrupt=4)
    dm = ZipDataModule(str(path), image_size=16, batch_size=2, num_workers=1, labels=True, cache=False)
    with pytest.warns(UserWarning, match="skipped 1 images of data.root=.*ffhq.zip .*00000/img00000004.png"):
        dm.setup("fit")
    batch, labels = next(iter(dm.train_dataloader()))  # decoded in a worker process, which opens the zip itself
    assert batch.shape == (2, 3, 16, 16) and dm.classes == ["0", "1", "2"]
    unlabelled = ZipDataModule(str(formats.stylegan_zip(tmp_path / "plain.zip", images, None)), labels=True)
    with pytest.raises(UsageError, match="has no class labels"):
        unlabelled.classes
    with pytest.raises(UsageError, match="is not a zip file"):
        (tmp_path / "fake.zip").write_bytes(b"PK not really")
        ZipDataModule(str(tmp_path / "fake.zip")).source


def test_train_py_trains_on_each_preset(run_config, tmp_path: Path):
    images = pictures(32)
    formats.cifar(tmp_path / "data", images, LABELS)
    formats.stylegan_zip(tmp_path / "faces.zip", images, LABELS)
    formats.huggingface(tmp_path / "hf", images, LABELS)
    shrink = ["data.batch_size=2", "~callbacks.quality", "~callbacks.figures", "data.labels=true"]
    for preset, where in (("torchvision", ["data.name=CIFAR10", f"data.root={tmp_path / 'data'}"]),
                          ("zip", [f"data.root={tmp_path / 'faces.zip'}"]),
                          ("huggingface", [f"data.name={tmp_path / 'hf'}", "data.image_key=picture"])):
        train(run_config("experiment=cifar32", f"data={preset}", *where, *shrink,
                         f"paths.output_dir={tmp_path / preset}", f"paths.data_dir={tmp_path / 'data'}"))
        assert (tmp_path / preset / "checkpoints" / "last.ckpt").is_file(), preset


def test_missing_data_extras_and_datasets_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(UsageError, match=r"data.name=CIFAR10: not found under data.root=.* data.download=true"):
        TorchvisionDataModule("CIFAR10", str(tmp_path)).source
    with pytest.raises(UsageError, match="data.name=ImageNet is not one torchvision dataset this reads"):
        TorchvisionDataModule("ImageNet", str(tmp_path)).source
    with pytest.raises(UsageError, match="data.split=valid: CIFAR10 has the splits train, test"):
        TorchvisionDataModule("CIFAR10", str(tmp_path), split="valid").source
    monkeypatch.setitem(sys.modules, "datasets", None)  # as where the extra is not installed
    with pytest.raises(UsageError, match=r"pip install 'dcgan-lightning\[huggingface\]'"):
        HuggingFaceDataModule(str(tmp_path)).source
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(UsageError, match=r"pip install 'dcgan-lightning\[lmdb\]'"):
        TorchvisionDataModule("LSUN", str(tmp_path), split="bedroom_train").source


def test_a_folder_with_names_in_another_encoding_and_symlinked_class_folders_trains(run_config, tmp_path: Path):
    images = pictures(16, count=6)
    root, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    for folder in (root / "cats", elsewhere / "dogs"):
        folder.mkdir(parents=True)
    latin1 = Path(os.fsdecode(b"caf\xe9.png"))  # a Latin-1 name: not valid UTF-8
    (root / "cats" / latin1).write_bytes(formats.png(images[0]))
    (root / "cats" / "1.png").write_bytes(formats.png(images[1]))
    summer = root / os.fsdecode(b"\xe9t\xe9")  # a class folder named in Latin-1 too
    summer.mkdir()
    (summer / "2.png").write_bytes(formats.png(images[2]))
    for i in (3, 4):
        (elsewhere / "dogs" / f"{i}.png").write_bytes(formats.png(images[i]))
    (root / "dogs").symlink_to(elsewhere / "dogs")  # a class kept on another disk
    (elsewhere / "dogs" / "again").symlink_to(elsewhere / "dogs")  # a loop
    with pytest.warns(UserWarning, match="not following dogs/again: each links to a folder it is in"):
        dm = ImageFolderDataModule(str(root), image_size=16, batch_size=2, num_workers=0, labels=True,
                                   cache_dir=str(tmp_path / "cache"))
        assert dm.classes == ["cats", "dogs", "\\xe9t\\xe9"] and len(dm.files) == 5
    dm.prepare_data()
    assert {name for _, name in decoded(dm)} == {"cats", "dogs", "\\xe9t\\xe9"}
    (root / "cats" / os.fsdecode(b"bad\xff.png")).write_bytes(b"not an image")
    train(run_config("experiment=folder", f"data.root={root}", "data.labels=true", "data.batch_size=2",
                     "~callbacks.quality", f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path}"))
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
