"""What the bad-input tests share: tiny real images, entries no file system should hold among
images (FIFOs, sockets, devices, dangling and looping links), reading as a user who is not root,
a guard that turns a hang into a failure, and train.py run as a user runs it."""

import ctypes
import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import formats
from conftest import ROOT, SHRINK
from dcgan.data.module import ImageDataModule


def pictures(count: int = 6, size: int = 16, seed: int = 0) -> np.ndarray:
    """(count, size, size, 3) uint8 noise: no two images alike."""
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def image_folder(root: Path, count: int = 6, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(pictures(count, seed=seed)):
        (root / f"{i}.png").write_bytes(formats.png(image))
    return root


def bmp(image: np.ndarray) -> bytes:
    """An uncompressed image file: the same size whatever the pixels, each pixel at its own bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "BMP")
    return buffer.getvalue()


def fifo(path: Path) -> None:
    os.mkfifo(path)  # opening it for reading blocks until a writer comes: never one here


def unix_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))


def device(path: Path) -> None:
    path.symlink_to("/dev/zero")  # a character device that never ends: read whole, it would fill memory


def dangling(path: Path) -> None:
    path.symlink_to(path.parent / "gone" / "image.png")


def looping(path: Path) -> None:
    path.symlink_to(path.name)  # a link to itself


ODD_ENTRIES: dict[str, Callable[[Path], None]] = {"pipe.png": fifo, "socket.png": unix_socket, "zero.png": device,
                                                   "dangling.png": dangling, "loop.png": looping}


def trained_images(dm: ImageDataModule) -> torch.Tensor:
    """The (N, C, S, S) uint8 images a DataModule trains on, in the source's order."""
    dm.setup("fit")
    return dm.images.clone() if dm.tier else torch.stack([dm.dataset.image(i) for i in range(len(dm.dataset))])


def as_chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2)


@contextmanager
def not_root() -> Iterator[None]:
    """This thread (and the processes it starts) reads and writes files as their permissions say,
    as any user but root does: as root, without the capabilities that override them."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    version_3 = 0x20080522
    sets = (Data * 2)()
    if libc.capget(ctypes.byref(Header(version_3, 0)), sets):
        pytest.skip("cannot read this process's capabilities")
    effective = sets[0].effective
    sets[0].effective &= ~(1 << 1 | 1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capset(ctypes.byref(Header(version_3, 0)), sets):
        pytest.skip("cannot drop the capabilities that let root read any file")
    try:
        yield
    finally:
        sets[0].effective = effective
        libc.capset(ctypes.byref(Header(version_3, 0)), sets)


class Hung(BaseException):
    """Not an Exception: no `except Exception` on the way (a decoder's) can take it for a bad record."""


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail, instead of hanging the suite, when the block takes longer than seconds."""
    def hung(signum, frame):
        raise Hung(f"hung: still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def train_py(tmp_path: Path, *overrides: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """train.py run as a user runs it, shrunk to seconds: its exit code and what it printed."""
    command = [sys.executable, str(ROOT / "train.py"), *SHRINK, "~callbacks.quality", "~callbacks.figures",
               "data.batch_size=2", f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}",
               *overrides]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error line of a run that failed as a user's mistake should: non-zero, one line, no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]
