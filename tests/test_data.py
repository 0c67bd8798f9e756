"""The DataModule reads any image folder into batches the seed's transforms would give."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.data.digits import MARKER, DigitsDataModule
from dcgan.data.folder import Folder, ImageFolderDataModule
from dcgan.data.images import Decoded, find_images
from dcgan.data.memory import InMemoryDataModule
from dcgan.errors import UsageError


def save(path: Path, image: Image.Image, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Flat and nested files in every supported format and the PIL modes users meet."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), "RGB")
    save(tmp_path / "a.jpg", rgb)
    save(tmp_path / "b.png", rgb.convert("RGBA"))
    save(tmp_path / "c.bmp", rgb.convert("L"))
    save(tmp_path / "upper.PNG", rgb.convert("1"))
    save(tmp_path / "sub" / "d.webp", rgb)
    save(tmp_path / "sub" / "deeper" / "e.jpeg", rgb.convert("CMYK"))
    save(tmp_path / "sub" / "f.png", rgb.convert("P"), transparency=0)
    save(tmp_path / "sub" / "g.png", Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16)))  # I;16
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize("channels", [1, 3])
def test_every_format_and_mode_becomes_a_uint8_square(mixed_folder: Path, channels: int):
    dataset = Decoded(Folder(mixed_folder), image_size=16, channels=channels)
    assert len(dataset) == 8  # the .txt is ignored, nested files are found
    modes = {Image.open(f).mode for f in dataset.source.files}
    assert {"RGB", "RGBA", "L", "1", "CMYK", "P"} <= modes and modes & {"I;16", "I"}  # 16-bit: I;16 from Pillow 10.3
    for index in range(len(dataset)):
        image = dataset[index]
        assert image.shape == (channels, 16, 16) and image.dtype == torch.uint8


def test_batches_are_scaled_to_minus_one_one_on_the_device(mixed_folder: Path):
    dm = ImageFolderDataModule(str(mixed_folder), image_size=16, channels=3, batch_size=3, num_workers=0, cache=False)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(loader) == 2  # drop_last: 8 images make two full batches of 3
    batch = next(iter(loader))
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 16, 16)
    scaled = dm.on_after_batch_transfer(batch, 0)
    assert scaled.dtype == torch.float32 and scaled.min() >= -1 and scaled.max() <= 1
    edges = dm.on_after_batch_transfer(torch.tensor([0, 255], dtype=torch.uint8), 0)
    assert edges.tolist() == [-1.0, 1.0]  # ToTensor + Normalize(0.5, 0.5)


def test_loader_options_are_honoured(mixed_folder: Path):
    dm = ImageFolderDataModule(str(mixed_folder), image_size=16, batch_size=3, num_workers=1, drop_last=False, cache=False)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert (loader.batch_size, loader.num_workers, loader.drop_last, len(loader)) == (3, 1, False, 3)


def test_shorter_side_is_resized_and_the_centre_kept(tmp_path: Path):
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = (0, 0, 255)  # a blue centre square between black sides
    save(tmp_path / "wide.png", Image.fromarray(wide))
    image = Decoded(Folder(tmp_path), image_size=16, channels=3)[0]
    assert (image[2, :, 2:14] > 200).all() and (image[:2] == 0).all()


def test_sixteen_bit_images_keep_their_range(tmp_path: Path):
    for value in (0, 32896, 65535):
        save(tmp_path / f"{value}.png", Image.fromarray(np.full((16, 16), value, dtype=np.uint16)))
    dataset = Decoded(Folder(tmp_path), image_size=16, channels=1)
    levels = {Path(f).stem: int(dataset[i][0, 0, 0]) for i, f in enumerate(dataset.source.files)}
    assert levels == {"0": 0, "32896": 128, "65535": 255}


def test_small_images_are_upscaled(tmp_path: Path):
    save(tmp_path / "tiny.png", Image.new("RGB", (5, 7), (10, 200, 30)))
    image = Decoded(Folder(tmp_path), image_size=32, channels=3)[0]
    assert image.shape == (3, 32, 32) and image[:, 16, 16].tolist() == [10, 200, 30]


def test_missing_or_empty_root_is_a_one_line_error(tmp_path: Path):
    with pytest.raises(UsageError, match="is not a folder"):
        find_images(tmp_path / "nowhere")
    (tmp_path / "readme.md").write_text("no images here")
    with pytest.raises(UsageError, match="holds no images"):
        find_images(tmp_path)


def test_builtin_digits_are_real_labelled_scans(digits_root: Path):
    folders = sorted(p.name for p in digits_root.iterdir() if p.is_dir())
    assert folders == [str(d) for d in range(10)]
    assert (digits_root / MARKER).exists()
    assert len(find_images(digits_root)) == 1797
    dm = DigitsDataModule(str(digits_root))
    dm.prepare_data()  # already there: nothing rewritten
    dm.setup("fit")
    assert dm.images.shape == (1797, 1, 32, 32)  # decoded once into the cache


def test_digits_are_not_written_into_a_users_folder(tmp_path: Path):
    (tmp_path / "mine.png").write_bytes(b"")
    with pytest.raises(UsageError, match="not the built-in digits"):
        DigitsDataModule(str(tmp_path)).prepare_data()
    assert [p.name for p in tmp_path.iterdir()] == ["mine.png"]


def test_images_in_memory_train_through_the_cached_path(tmp_path: Path):
    images = torch.randint(0, 256, (10, 3, 16, 16), dtype=torch.uint8)
    dm = InMemoryDataModule(images, labels=torch.arange(10) % 2, batch_size=4)
    dm.setup("fit")
    assert dm.classes == ["0", "1"] and len(dm.train_dataloader()) == 2  # whole batches of 4
    batch, labels = dm.on_after_batch_transfer(torch.tensor([3, 8]), 0)
    assert torch.allclose(batch, images[[3, 8]].float() / 255 * 2 - 1, atol=1e-6) and labels.tolist() == [1, 0]
