"""torchvision's layouts (CIFAR10/100, MNIST, FashionMNIST, STL10, CelebA) given what real disks and
downloads hand them: damaged, truncated, foreign or mismatched files, labels training cannot take,
no network, a wrong data.root, files changed between runs. Each trains with the bad records
skipped and counted, or stops with one line naming what, where and the fix, never a wrong fix."""

import os
import pickle
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import formats
from conftest import ROOT, compose_config
from dcgan.config import instantiate_node
from dcgan.errors import UsageError

pytestmark = pytest.mark.filterwarnings("ignore:.*does not have many workers.*")
LABELS = np.array([0, 1, 2, 0, 1, 2])


def pictures(size: int, count: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def datamodule(tmp_path: Path, name: str, root: Path, *overrides: str):
    """The DataModule train.py would build for data=torchvision with these options."""
    cfg = compose_config(["experiment=cifar32", "data=torchvision", f"data.name={name}", f"data.root={root}",
                          "data.image_size=32", "data.batch_size=2", "data.num_workers=0", f"paths.data_dir={tmp_path / 'data'}",
                          f"paths.output_dir={tmp_path / 'run'}", *overrides])
    return instantiate_node(cfg.data, "data")


def refused(tmp_path: Path, name: str, root: Path, *overrides: str, match: str) -> str:
    with pytest.raises(UsageError, match=match) as error:
        datamodule(tmp_path, name, root, *overrides).setup("fit")
    assert "\n" not in str(error.value)
    return str(error.value)


def cifar(tmp_path: Path, labels: np.ndarray = LABELS) -> tuple[Path, Path]:
    root = formats.cifar(tmp_path / "cifar", pictures(32), labels)
    return root, root / "cifar-10-batches-py"


def test_a_damaged_cifar_meta_or_batch_is_one_line_that_says_to_fetch_a_fresh_copy(tmp_path: Path):
    root, folder = cifar(tmp_path)
    meta = (folder / "batches.meta").read_bytes()
    (folder / "batches.meta").write_bytes(meta[: len(meta) // 2])  # truncated
    message = refused(tmp_path, "CIFAR10", root, match=r"cifar-10-batches-py is damaged or not CIFAR10's \(Unpickling")
    assert message.endswith("delete it and run with data.download=true for a fresh copy")
    (folder / "batches.meta").write_bytes(meta)
    (folder / "data_batch_1").write_bytes(pickle.dumps([1, 2, 3]))  # a pickle, but not CIFAR's
    refused(tmp_path, "CIFAR10", root, match=r"is damaged or not CIFAR10's \(TypeError")
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": np.zeros((6, 100), np.uint8), "labels": [0] * 6}))
    refused(tmp_path, "CIFAR10", root, match=r"is damaged or not CIFAR10's \(ValueError")


def test_cifar_labels_past_its_classes_or_negative_are_refused_with_labels_and_train_without(tmp_path: Path):
    root, _ = cifar(tmp_path, np.array([0, 1, 57, 0, 1, -3]))
    refused(tmp_path, "CIFAR10", root, "data.labels=true",
            match=r"CIFAR10 train record 2 has the class label 57, which is none of its 10 classes .*data.labels=false")
    unlabelled = datamodule(tmp_path, "CIFAR10", root)
    unlabelled.setup("fit")
    assert len(unlabelled.images) == 6


def test_cifar_with_fewer_labels_than_images_is_damaged_not_skipped_images(tmp_path: Path):
    root, folder = cifar(tmp_path)
    rows = pictures(32).transpose(0, 3, 1, 2).reshape(6, -1)
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": rows, "labels": [0, 1, 2, 0]}))
    refused(tmp_path, "CIFAR10", root, match=r"cifar-10-batches-py is damaged: it holds 6 images and 4 labels")


def test_damaged_mnist_idx_files_are_not_called_missing(tmp_path: Path):
    root = formats.mnist(tmp_path / "m", pictures(28)[..., :1], LABELS)
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:60])  # truncated
    message = refused(tmp_path, "MNIST", root, "data.channels=1", match=r"MNIST/raw is damaged or not MNIST's")
    assert "downloads it there" not in message  # the files are there: downloading would skip them
    images.write_bytes(b"GIF89a not an idx file at all")  # foreign
    refused(tmp_path, "MNIST", root, "data.channels=1", match=r"MNIST/raw is damaged or not MNIST's")


def test_an_mnist_label_an_idx_file_allows_but_training_does_not_is_refused(tmp_path: Path):
    root = formats.mnist(tmp_path / "m", pictures(28)[..., :1], LABELS, kind="FashionMNIST")
    labels = root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">II", 0x801, 6) + bytes([0, 1, 200, 0, 1, 2]))
    refused(tmp_path, "FashionMNIST", root, "data.channels=1", "data.labels=true",
            match=r"FashionMNIST train record 2 has the class label 200")


def test_stl10_truncated_binaries_and_a_zero_label_byte_are_one_line(tmp_path: Path):
    root = formats.stl10(tmp_path / "stl", pictures(96, count=4), LABELS[:4])
    images = root / "stl10_binary" / "train_X.bin"
    whole = images.read_bytes()
    images.write_bytes(whole[:1000])
    refused(tmp_path, "STL10", root, match=r"stl10_binary is damaged or not STL10's \(ValueError: cannot reshape")
    images.write_bytes(whole)
    (root / "stl10_binary" / "train_y.bin").write_bytes(bytes([1, 2, 0, 10]))  # 1-based: 0 is no class
    refused(tmp_path, "STL10", root, "data.labels=true", match=r"STL10 train record 2 has the class label 255")


def test_celeba_damaged_list_files_stop_and_a_missing_image_is_skipped_and_counted(tmp_path: Path):
    root = formats.celeba(tmp_path / "faces", pictures(32, count=4))
    attributes = root / "celeba" / "list_attr_celeba.txt"
    kept = attributes.read_text()
    attributes.write_text("4\n")  # cut after its first line
    refused(tmp_path, "CelebA", root, match=r"celeba is damaged or not CelebA's \(IndexError")
    attributes.write_text(kept)
    (root / "celeba" / "img_align_celeba" / "000002.jpg").unlink()
    dm = datamodule(tmp_path, "CelebA", root)
    with pytest.warns(UserWarning, match=r"skipped 1 images of data.name=CelebA .*: CelebA train record 1"):
        dm.setup("fit")
    assert len(dm.images) == 3


def test_a_wrong_data_root_or_name_gets_the_right_fix(tmp_path: Path):
    root, folder = cifar(tmp_path)
    refused(tmp_path, "CIFAR10", folder, match=rf"data.root names cifar-10-batches-py itself: set data.root={root},")
    refused(tmp_path, "CIFAR10", tmp_path / "elsewhere", match=r"not found under data.root=.* data.download=true "
                                                               r"downloads it there")
    refused(tmp_path, "cifar10", root, match=r"did you mean data.name=CIFAR10\?")
    refused(tmp_path, "CIFAR10", folder / "batches.meta", match=r"data.root=.*batches.meta is not a folder: point it at "
                                                               r"the folder torchvision keeps CIFAR10 in")
    refused(tmp_path, "CIFAR10", root, "data.split=valid", match=r"data.split=valid: CIFAR10 has the splits train, test")
    refused(tmp_path, "CelebA", formats.celeba(tmp_path / "faces", pictures(8, count=2)), "data.labels=true",
            match=r"has no class labels")


def test_a_download_without_network_is_one_line_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def blocked(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "getaddrinfo", blocked)  # no DNS and no connection: an offline machine
    monkeypatch.setattr(socket.socket, "connect", blocked)
    message = refused(tmp_path, "CIFAR10", tmp_path / "fresh", "data.download=true",
                      match=r"data.download=true: CIFAR10 could not be downloaded into data.root=.*fresh")
    assert "download it on a machine with one" in message and "copy its cifar-10-batches-py folder" in message
    refused(tmp_path, "MNIST", tmp_path / "fresh", "data.download=true", "data.channels=1",
            match=r"MNIST could not be downloaded .* copy its MNIST/raw folder")  # after trying each mirror
    root, folder = cifar(tmp_path)
    (folder / "data_batch_3").unlink()  # a partial copy: downloading again is the fix, and fails offline
    refused(tmp_path, "CIFAR10", root, match=r"not found under data.root=.* data.download=true downloads it there")
    refused(tmp_path, "CIFAR10", root, "data.download=true", match=r"CIFAR10 could not be downloaded .*URLError")


def test_a_batch_replaced_keeping_its_size_and_time_is_seen_by_the_next_run(tmp_path: Path):
    root, folder = cifar(tmp_path)
    first = datamodule(tmp_path, "CIFAR10", root)
    first.setup("fit")  # decoded into the cache under paths.data_dir
    assert first.images.numpy().tobytes() == pictures(32).transpose(0, 3, 1, 2).tobytes()
    batch = folder / "data_batch_1"
    times = batch.stat()
    other = pictures(32, seed=1).transpose(0, 3, 1, 2).reshape(6, -1)
    batch.write_bytes(pickle.dumps({"data": other, "labels": LABELS.tolist()}))
    os.utime(batch, ns=(times.st_atime_ns, times.st_mtime_ns))  # as cp -p / rsync -a leave it
    assert batch.stat().st_size == times.st_size
    again = datamodule(tmp_path, "CIFAR10", root)
    again.setup("fit")
    assert again.images.numpy().tobytes() == pictures(32, seed=1).transpose(0, 3, 1, 2).tobytes()


@pytest.mark.slow
def test_train_py_on_damaged_cifar_prints_one_line_and_fails(tmp_path: Path):
    root, folder = cifar(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x04 damaged")
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "experiment=cifar32", "data=torchvision",
                           "data.name=CIFAR10", f"data.root={root}", "data.split=test", f"paths.data_dir={tmp_path}",
                           "trainer.accelerator=cpu"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: data.name=CIFAR10: ")
