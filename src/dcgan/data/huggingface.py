"""Hugging Face `datasets` as a source (the `huggingface` extra): a folder written by
save_to_disk, a local image folder (the `imagefolder` builder), or a dataset on the Hub (the
HugGAN collection), one split of it. The image and label columns are found by their features
(an Image, a ClassLabel) where that is unambiguous, else named by data.image_key / data.label_key."""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data.images import fitted
from dcgan.data.module import ImageDataModule
from dcgan.data.source import Source, shown
from dcgan.errors import UsageError


def opened(name: str, split: str, cache_dir: Path | None) -> Any:
    try:
        import datasets
    except ImportError:
        raise UsageError("data=huggingface reads through the datasets library: "
                         "pip install 'dcgan-lightning[huggingface]'") from None
    path = Path(name).expanduser()
    if path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):  # save_to_disk
        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise UsageError(f"data.split={split}: {shown(path)} has the splits {', '.join(dataset)}")
            dataset = dataset[split]
        return dataset
    folder = {"path": "imagefolder", "data_dir": str(path)} if path.is_dir() else {"path": name}
    try:
        return datasets.load_dataset(**folder, split=split, cache_dir=cache_dir and str(cache_dir))
    except (FileNotFoundError, ValueError) as error:  # no such dataset or split
        raise UsageError(f"data.name={name} data.split={split} cannot be loaded: {error}") from None


def column(features: dict[str, Any], kind: type, key: str | None, what: str, option: str) -> str | None:
    """The column named key, else the one column of this kind (None: there is none)."""
    if key is not None:
        if key not in features:
            raise UsageError(f"{option}={key} is not a column; the columns: {', '.join(features)}")
        return key
    found = [name for name, feature in features.items() if isinstance(feature, kind)]
    if len(found) > 1:
        raise UsageError(f"the dataset has {len(found)} {what} columns ({', '.join(found)}): pick one with {option}=")
    return found[0] if found else None


class HuggingFace(Source):
    def __init__(self, name: str, split: str = "train", image_key: str | None = None, label_key: str | None = None,
                 cache_dir: Path | None = None):
        dataset = opened(name, split, cache_dir)  # first: it says so when datasets is not installed
        import datasets

        self.title = f"{shown(name)} ({split})"
        self.where = f"data.name={shown(name)} data.split={split}"
        self.image_key = column(dataset.features, datasets.Image, image_key, "image", "data.image_key")
        if self.image_key is None:
            raise UsageError(f"{self.where} has no image column: name it with data.image_key=")
        self.label_key = column(dataset.features, datasets.ClassLabel, label_key, "class label", "data.label_key")
        self.images = dataset.select_columns([self.image_key])  # a row decodes its image only
        self.dataset = dataset
        self.fingerprint = dataset._fingerprint  # datasets' own hash of the data and its transforms

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        return fitted(self.images[index][self.image_key], image_size, channels)

    def name(self, index: int) -> str:
        return f"row {index}"

    def state(self) -> str:
        return self.fingerprint

    def key(self) -> str:
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(self.title).name)
        return f"{stem}-{hashlib.sha1(self.where.encode()).hexdigest()[:8]}"

    @property
    def classes(self) -> list[str]:
        if self.label_key is None:
            return []
        feature = self.dataset.features[self.label_key]
        return list(feature.names) if hasattr(feature, "names") else [str(n) for n in range(max(self.labels()) + 1)]

    def labels(self) -> list[int] | None:
        return None if self.label_key is None else [int(label) for label in self.dataset[self.label_key]]


class HuggingFaceDataModule(ImageDataModule):
    """Batches of a `datasets` dataset (see ImageDataModule for the options). name: a Hub id or a
    local path (a save_to_disk folder, or a folder of images); split: which split; image_key,
    label_key: the columns (found by their features when null); root: where a Hub dataset is
    downloaded and prepared (null: datasets' own cache, ~/.cache/huggingface)."""

    def __init__(self, name: str, split: str = "train", image_key: str | None = None, label_key: str | None = None,
                 root: str | None = None, **options: Any):
        super().__init__(**options)
        self.name, self.split, self.image_key, self.label_key = name, split, image_key, label_key
        self.root = root and Path(root).expanduser()

    def _source(self) -> HuggingFace:
        return HuggingFace(self.name, self.split, self.image_key, self.label_key, self.root)
