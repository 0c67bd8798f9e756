"""torchvision's datasets as a source, read from torchvision's own layout under data.root:
CIFAR10/100 (pickled batches), MNIST/FashionMNIST (idx files), STL10 (binaries), CelebA (its
aligned JPEGs and list files), and LSUN's LMDBs (lsun.py). Downloaded only with data.download=true; a
damaged file, a failed download and a missing dataset each get one line with its own fix."""

import os
import pickle
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np

from dcgan.data.images import fitted
from dcgan.data.lsun import Lsun
from dcgan.data.module import ImageDataModule
from dcgan.data.reading import content_digest
from dcgan.data.source import Source, place, said, shown
from dcgan.errors import UsageError

NETWORK = (URLError, TimeoutError, ConnectionError, HTTPException)  # a download that could not finish
SPLITS = {  # what data.split may be, and the keyword each class takes it as
    "CIFAR10": ("train", "test"), "CIFAR100": ("train", "test"), "MNIST": ("train", "test"),
    "FashionMNIST": ("train", "test"), "STL10": ("train", "test", "unlabeled", "train+unlabeled"),
    "CelebA": ("train", "valid", "test", "all"), "LSUN": (),  # LSUN (lsun.py): train, val, or categories
}


def files_present(dataset: Any) -> bool:
    """torchvision's integrity check without its MD5s: whether the files are there. The MD5s are
    checked when torchvision downloads; hashing the whole dataset again at every start (170 MB
    for CIFAR-10) finds nothing a read would not."""
    listed = [entry[0] for entry in getattr(dataset, "train_list", []) + getattr(dataset, "test_list", [])]
    listed += [name for _, _, name in getattr(dataset, "file_list", []) if not name.endswith((".zip", ".7z"))]
    folder = Path(dataset.root, dataset.base_folder)
    images = folder / "img_align_celeba"  # CelebA's extracted images
    return all((folder / name).is_file() for name in listed) and (not hasattr(dataset, "file_list") or images.is_dir())


def cifar_meta(dataset: Any) -> None:
    """CIFAR's class names, read as torchvision reads them, without its MD5 (see files_present)."""
    with open(Path(dataset.root, dataset.base_folder, dataset.meta["filename"]), "rb") as file:
        dataset.classes = pickle.load(file, encoding="latin1")[dataset.meta["key"]]
    dataset.class_to_idx = {name: i for i, name in enumerate(dataset.classes)}


def folder_of(name: str, root: Path) -> Path:
    """Where torchvision keeps the dataset's files under root."""
    import torchvision.datasets

    base = getattr(torchvision.datasets, name)
    return root / name / "raw" if name in ("MNIST", "FashionMNIST") else root / base.base_folder


@contextmanager
def network_timeout(seconds: float = 60) -> Iterator[None]:
    """torchvision opens its URLs without a timeout: a network that drops packets would hang the run."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def opened(name: str, root: Path, split: str, download: bool) -> Any:
    import torchvision.datasets

    if name not in SPLITS:
        near = {known.lower(): known for known in SPLITS}.get(name.lower())
        raise UsageError(f"data.name={name} is not one torchvision dataset this reads: "
                         + (f"did you mean data.name={near}?" if near else ", ".join(SPLITS)))
    splits = SPLITS[name]
    if split not in splits:
        raise UsageError(f"data.split={split}: {name} has the splits {', '.join(splits)}")
    base = getattr(torchvision.datasets, name)
    checks = {"_check_integrity": files_present, "_load_meta": cifar_meta}
    kind = type(name, (base,), {name: check for name, check in checks.items() if hasattr(base, name)})
    options = {"split": split} if name in ("STL10", "CelebA") else {"train": split == "train"}
    folder = folder_of(name, root)
    if root.exists() and not root.is_dir():
        raise UsageError(f"data.root={shown(root)} is not a folder: point it at the folder torchvision keeps {name} in "
                         f"(the one holding {shown(folder.relative_to(root))})")
    there = folder.is_dir()
    if download:
        print(f"dcgan: downloading {name} ({split}) into {shown(root)} through torchvision", flush=True)
    try:
        with network_timeout():
            return kind(str(root), download=download, **options)
    except Exception as error:  # noqa: BLE001 what a download, or unpickling or parsing a damaged file, raises
        why = said(error)
        failed = isinstance(error, NETWORK) or str(error).startswith("Error downloading")  # MNIST's, after its mirrors
        if download and (failed or not there):
            raise UsageError(f"data.download=true: {name} could not be downloaded into data.root={shown(root)} "
                             f"({why}): without a network, download it on a machine with one "
                             f"(torchvision.datasets.{name}(root, download=True)) and copy its "
                             f"{shown(folder.relative_to(root))} folder into data.root") from None
        if isinstance(error, RuntimeError) and "Dataset not found" in str(error):
            inside = root.name == folder.relative_to(root).parts[0]  # data.root named the dataset's own folder
            raise UsageError(f"data.name={name}: not found under data.root={shown(root)} in torchvision's layout "
                             f"(it reads {shown(folder)}): "
                             + (f"data.root names {root.name} itself: set data.root={shown(root.parent)}, the folder "
                                f"holding it"
                                if inside else "data.download=true downloads it there")) from None
        raise UsageError(f"data.name={name}: {shown(folder)} is damaged or not {name}'s ({why}): delete it and run "
                         "with data.download=true for a fresh copy") from None


class Torchvision(Source):
    def __init__(self, name: str, root: Path, split: str = "train", download: bool = False):
        self.dataset = opened(name, root, split, download)
        self.dataset_name, self.root, self.split = name, root, split
        self.folder = folder_of(name, root)
        self.title = f"{name} ({split}) under {shown(root)}"
        self.where = f"data.name={name} data.split={split} under data.root={shown(root)}"
        targets = self._targets()
        if targets is not None and len(targets) != len(self.dataset):  # else records past the labels fail as images
            raise UsageError(f"data.name={name}: {shown(self.folder)} is damaged: it holds {len(self.dataset)} images "
                             f"and {len(targets)} labels: delete it and run with data.download=true for a fresh copy")

    def _targets(self) -> Any:
        if self.dataset_name == "STL10":
            return self.dataset.labels
        return getattr(self.dataset, "targets", None)  # CelebA's are attributes, read per record

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        return fitted(self.dataset[index][0], image_size, channels)  # torchvision's PIL image

    def name(self, index: int) -> str:
        return f"{self.dataset_name} {self.split} record {index}"

    def state(self) -> str:
        files = sorted(Path(folder, name) for folder, _, names in os.walk(self.folder) for name in names)
        return content_digest(self.root, files)

    def key(self) -> str:
        return f"{self.dataset_name}-{self.split}-{place(self.root)}"

    @property
    def classes(self) -> list[str]:
        if self.dataset_name == "CelebA" or (self.dataset_name == "STL10" and "unlabeled" in self.split):
            return []  # CelebA's targets are 40 attributes, not classes; STL10's unlabeled images have none
        return [str(name) for name in self.dataset.classes]

    def labels(self) -> list[int] | None:
        return [int(target) for target in self._targets()] if self.classes else None


class TorchvisionDataModule(ImageDataModule):
    """Batches of a torchvision dataset (see ImageDataModule for the options). name: its class,
    e.g. CIFAR10; root: the folder torchvision keeps it in; split: train, test, ... (LSUN:
    train, val, or categories such as bedroom_train); download: fetch it into root if missing.
    LSUN's list of keys is kept in cache_dir (lsun.py)."""

    def __init__(self, name: str, root: str = "data", split: str = "train", download: bool = False, **options: Any):
        super().__init__(**options)
        self.name, self.root, self.split, self.download = name, Path(root).expanduser(), split, download

    def _source(self) -> Source:
        if self.name != "LSUN":
            return Torchvision(self.name, self.root, self.split, self.download)
        if self.download:
            raise UsageError("data.download=true: torchvision cannot download LSUN; get it with LSUN's own "
                             "download.py (github.com/fyu/lsun) into data.root")
        return Lsun(self.root, self.split, self.cache_dir)
