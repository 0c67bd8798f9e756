"""torchvision's datasets as a source, read from torchvision's own layout under data.root:
CIFAR10/100 (pickled batches), MNIST/FashionMNIST (idx files), STL10 (binaries), CelebA (its
aligned JPEGs and list files), LSUN (LMDB: the `lmdb` extra). Downloaded only with data.download=true."""

import bisect
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data.images import fitted
from dcgan.data.module import ImageDataModule
from dcgan.data.source import Source, place, shown, stats_digest
from dcgan.errors import UsageError

SPLITS = {  # what data.split may be, and the keyword each class takes it as
    "CIFAR10": ("train", "test"), "CIFAR100": ("train", "test"), "MNIST": ("train", "test"),
    "FashionMNIST": ("train", "test"), "STL10": ("train", "test", "unlabeled", "train+unlabeled"),
    "CelebA": ("train", "valid", "test", "all"), "LSUN": None,  # LSUN: "train", "val", or categories
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


def opened(name: str, root: Path, split: str, download: bool) -> Any:
    import torchvision.datasets

    if name not in SPLITS:
        raise UsageError(f"data.name={name} is not one torchvision dataset this reads: {', '.join(SPLITS)}")
    splits = SPLITS[name]
    if splits and split not in splits:
        raise UsageError(f"data.split={split}: {name} has the splits {', '.join(splits)}")
    base = getattr(torchvision.datasets, name)
    checks = {"_check_integrity": files_present, "_load_meta": cifar_meta}
    kind = type(name, (base,), {name: check for name, check in checks.items() if hasattr(base, name)})
    if name == "LSUN":  # one LMDB per category: root/<category>_<split>_lmdb
        if download:
            raise UsageError("data.download=true: torchvision cannot download LSUN; get it with LSUN's own "
                             "download.py (github.com/fyu/lsun) into data.root")
        try:
            import lmdb  # noqa: F401  (torchvision's LSUN reads through it)
        except ImportError:
            raise UsageError("data.name=LSUN reads LMDB through the lmdb package: pip install 'dcgan-lightning[lmdb]'")
        categories = split.split(",") if "_" in split else split
        return kind(str(root), classes=categories)
    options = {"split": split} if name in ("STL10", "CelebA") else {"train": split == "train"}
    if download:
        print(f"dcgan: downloading {name} ({split}) into {shown(root)} through torchvision", flush=True)
    try:
        return kind(str(root), download=download, **options)
    except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
        raise UsageError(f"data.name={name}: not found under data.root={shown(root)} in torchvision's layout "
                         f"({error}); data.download=true downloads it there") from None


class Torchvision(Source):
    def __init__(self, name: str, root: Path, split: str = "train", download: bool = False):
        self.dataset = opened(name, root, split, download)
        self.dataset_name, self.root, self.split = name, root, split
        self.title = f"{name} ({split}) under {shown(root)}"
        self.where = f"data.name={name} data.split={split} under data.root={shown(root)}"

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        return fitted(self.dataset[index][0], image_size, channels)  # torchvision's PIL image

    def name(self, index: int) -> str:
        return f"{self.dataset_name} {self.split} record {index}"

    def _folders(self) -> list[Path]:
        dataset = self.dataset
        if hasattr(dataset, "raw_folder"):  # MNIST, FashionMNIST
            return [Path(dataset.raw_folder)]
        if hasattr(dataset, "base_folder"):
            return [Path(dataset.root, dataset.base_folder)]
        return [Path(db.root) for db in dataset.dbs]  # LSUN's LMDB folders

    def state(self) -> str:
        files = sorted(Path(folder, name) for top in self._folders() for folder, _, names in os.walk(top) for name in names)
        return stats_digest(self.root, files)

    def key(self) -> str:
        return f"{self.dataset_name}-{self.split.replace(',', '+')}-{place(self.root)}"

    @property
    def classes(self) -> list[str]:
        if self.dataset_name == "CelebA" or (self.dataset_name == "STL10" and "unlabeled" in self.split):
            return []  # CelebA's targets are 40 attributes, not classes; STL10's unlabeled images have none
        return list(self.dataset.classes)

    def labels(self) -> list[int] | None:
        if not self.classes:
            return None
        dataset = self.dataset
        if self.dataset_name == "LSUN":  # each category's LMDB in turn
            return [bisect.bisect_right(dataset.indices, index) for index in range(len(dataset))]
        targets = dataset.labels if self.dataset_name == "STL10" else dataset.targets
        return [int(target) for target in targets]


class TorchvisionDataModule(ImageDataModule):
    """Batches of a torchvision dataset (see ImageDataModule for the options). name: its class,
    e.g. CIFAR10; root: the folder torchvision keeps it in; split: train, test, ... (LSUN:
    train, val, or categories such as bedroom_train); download: fetch it into root if missing."""

    def __init__(self, name: str, root: str = "data", split: str = "train", download: bool = False, **options: Any):
        super().__init__(**options)
        self.name, self.root, self.split, self.download = name, Path(root).expanduser(), split, download

    def _source(self) -> Torchvision:
        return Torchvision(self.name, self.root, self.split, self.download)
