"""Finding image files under a folder and decoding them into square uint8 arrays."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from dcgan.errors import UsageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def find_images(root: Path) -> list[Path]:
    """Every image file under root, at any depth (CelebA's root/img_align_celeba/ included)."""
    if not root.is_dir():
        raise UsageError(f"data.root={root} is not a folder: point data.root at a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        kinds = "/".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise UsageError(f"data.root={root} holds no images: expected {kinds} files, at any depth")
    return files


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode to 8-bit 'L' (channels=1) or 'RGB' (channels=3)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale: PIL's own convert clips at 255; scale the range down instead.
        array = np.asarray(img, dtype=np.float32) / 257.0
        img = Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # palette transparency is only honoured through RGBA
    return img.convert("L" if channels == 1 else "RGB")  # drops alpha, converts CMYK/LA/1/...


def load_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """Decode (a multi-frame GIF or TIFF: its first frame), resize the shorter side to image_size
    (smaller images are upscaled) and center-crop: (S, S, channels) uint8."""
    with Image.open(path) as img:
        img.draft(None, (image_size, image_size))  # JPEG: decode at the smallest scale >= size
        img = to_channels(img, channels)
    img = ImageOps.fit(img, (image_size, image_size), Image.Resampling.BILINEAR)
    return np.array(img).reshape(image_size, image_size, channels)  # a writable copy for torch


class ImageFolder(Dataset):
    """Images under a folder as uint8 tensors (C, S, S), with their labels when given: (image,
    label). Scaling to [-1, 1] happens on the device."""

    def __init__(self, files: list[Path], image_size: int, channels: int, labels: list[int] | None = None):
        self.files = files
        self.image_size = image_size
        self.channels = channels
        self.labels = labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor | tuple[Tensor, int]:
        image = torch.from_numpy(load_image(self.files[index], self.image_size, self.channels)).permute(2, 0, 1)
        return image if self.labels is None else (image, self.labels[index])  # (C, S, S)


class CheckedImages(ImageFolder):
    """ImageFolder's images with whether each could be decoded: ((C, S, S) uint8, ok)."""

    def __getitem__(self, index: int) -> tuple[Tensor, bool]:
        try:
            return super().__getitem__(index), True
        except Exception:  # whatever PIL raises for a corrupt, truncated, empty or unreadable file
            return torch.zeros(self.channels, self.image_size, self.image_size, dtype=torch.uint8), False


def decode_images(files: list[Path], image_size: int, channels: int, workers: int,
                  out: np.ndarray | None = None) -> list[Path]:
    """Decode every file once, in `workers` processes (0: here), and return those that could not
    be decoded. The others' pixels fill out (N, C, S, S) from the front, in order, when given."""
    loader = DataLoader(CheckedImages(files, image_size, channels), batch_size=256, num_workers=workers)
    bad: list[Path] = []
    done = filled = 0
    for images, ok in loader:
        if out is not None:
            out[filled : filled + int(ok.sum())] = images[ok].numpy()
            filled += int(ok.sum())
        bad += [files[done + i] for i in (~ok).nonzero().flatten().tolist()]
        done += len(ok)
    return bad
