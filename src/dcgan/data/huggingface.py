"""Hugging Face `datasets` as a source (the `huggingface` extra): a folder written by
save_to_disk, a local image folder (the `imagefolder` builder), or a dataset on the Hub (the
HugGAN collection), one split of it. The image and label columns are found by their features
(an Image, a ClassLabel) where that is unambiguous, else named by data.image_key / data.label_key.

What the decoded cache is kept for covers the content (reading.content_digest), not datasets'
fingerprint alone, which follows the files' modification times: an image folder's files (whose
rows only name them), a save_to_disk folder's files, a Hub dataset's prepared files. An image
folder is prepared afresh each run, in memory (a listing: its rows hold paths, not pixels), as
datasets' own cache of it would keep old labels from a metadata file edited with its time kept."""

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data.images import fitted
from dcgan.data.module import ImageDataModule
from dcgan.data.reading import content_digest
from dcgan.data.source import Source, said, shown
from dcgan.errors import UsageError


def datasets_library() -> Any:
    try:
        import datasets
    except ImportError:
        raise UsageError("data=huggingface reads through the datasets library: "
                         "pip install 'dcgan-lightning[huggingface]'") from None
    return datasets


def files_under(folder: Path) -> list[Path]:
    return sorted(Path(top, name) for top, _, names in os.walk(folder) for name in names)


def from_disk(path: Path, split: str) -> Any:
    """A save_to_disk folder's dataset (of a DatasetDict: its split)."""
    datasets = datasets_library()
    try:
        dataset = datasets.load_from_disk(str(path))
    except Exception as error:  # noqa: BLE001 a damaged or missing arrow or JSON file: pyarrow's, json's, OSError
        raise UsageError(f"data.name={shown(path)} is a save_to_disk folder that cannot be read ({said(error)}): "
                         "save the dataset there again (Dataset.save_to_disk)") from None
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise UsageError(f"data.split={split}: {shown(path)} has the splits {', '.join(dataset)}")
        return dataset[split]
    if split != "train":  # the default; any other would be ignored
        raise UsageError(f"data.split={split}: {shown(path)} holds one dataset, without splits: leave data.split out")
    return dataset


def image_folder(path: Path, split: str, scratch_dir: Path | None) -> Any:
    """A folder of images through datasets' imagefolder builder, prepared in a temporary folder (in
    scratch_dir, None: the system's) and kept in memory (see the module's docstring)."""
    datasets = datasets_library()
    try:
        if scratch_dir:
            scratch_dir.mkdir(parents=True, exist_ok=True)
        preparing = tempfile.TemporaryDirectory(prefix="dcgan-imagefolder-", dir=scratch_dir)
    except OSError as error:
        raise UsageError(f"data.root={shown(scratch_dir)} cannot hold datasets' preparation ({said(error)}): "
                         "name a folder you can write to, or leave data.root out") from None
    with preparing as scratch:
        try:
            return datasets.load_dataset("imagefolder", data_dir=str(path), split=split, cache_dir=scratch,
                                         keep_in_memory=True)
        except Exception as error:  # noqa: BLE001 no images, a damaged metadata file, no such split
            raise UsageError(f"data.name={shown(path)} cannot be read as an image folder by datasets "
                             f"({said(error)})") from None


def from_hub(name: str, split: str, cache_dir: Path | None) -> Any:
    """A Hub dataset, downloaded once into cache_dir (None: datasets' own cache). Without a network,
    one line at once: datasets would retry for half a minute, then raise."""
    datasets = datasets_library()
    from huggingface_hub import constants, get_session

    if not constants.is_offline_mode():
        try:
            get_session().head(constants.ENDPOINT, timeout=10)
        except Exception as error:  # noqa: BLE001 no route, no DNS, a dead proxy, a timeout
            raise UsageError(f"data.name={name}: the Hugging Face Hub cannot be reached ({said(error)}): "
                             "connect; or, downloaded before, set HF_HUB_OFFLINE=1 to read it from "
                             f"datasets' cache ({shown(cache_dir) if cache_dir else '~/.cache/huggingface'})") from None
    try:
        return datasets.load_dataset(name, split=split, cache_dir=cache_dir and str(cache_dir))
    except Exception as error:  # noqa: BLE001 no such dataset or split, not cached while offline, a damaged download
        offline = " (HF_HUB_OFFLINE is set: only datasets' cache is read)" if constants.is_offline_mode() else ""
        raise UsageError(f"data.name={name} data.split={split} cannot be loaded{offline}: "
                         f"{said(error)}") from None


def column(features: dict[str, Any], kinds: tuple[type, ...], key: str | None, what: str, option: str) -> str | None:
    """The column named key (refused unless of these kinds), else the one column of the first kind."""
    if key is not None:
        if key not in features:
            raise UsageError(f"{option}={key} is not a column; the columns: {', '.join(features)}")
        if not isinstance(features[key], kinds):
            raise UsageError(f"{option}={key} is no {what} column (it holds {features[key]!r}): name one that is")
        return key
    found = [name for name, feature in features.items() if isinstance(feature, kinds[0])]
    if len(found) > 1:
        raise UsageError(f"the dataset has {len(found)} {what} columns ({', '.join(found)}): pick one with {option}=")
    return found[0] if found else None


class HuggingFace(Source):
    def __init__(self, name: str, split: str = "train", image_key: str | None = None, label_key: str | None = None,
                 cache_dir: Path | None = None):
        datasets = datasets_library()  # first: it says so when datasets is not installed
        path = Path(name).expanduser()
        self.local = path if path.exists() else None
        looks_local = name.startswith(("/", "~", ".")) or name.count("/") > 1  # a Hub id is user/dataset
        if self.local is None and looks_local:
            raise UsageError(f"data.name={shown(name)}: no such folder (a Hub id reads user/dataset)")
        if self.local and not path.is_dir():
            raise UsageError(f"data.name={shown(name)} is a file: name a save_to_disk folder, a folder of images "
                             "or a Hub id")
        if self.local and any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):
            if cache_dir:  # said, not silently ignored (a run composed for another preset may carry one)
                warnings.warn(f"data.root={shown(cache_dir)} is not used: it is where a Hub dataset is downloaded, and "
                              f"the save_to_disk folder data.name={shown(name)} is read where it is", stacklevel=2)
            dataset = from_disk(path, split)
        else:
            dataset = image_folder(path, split, cache_dir) if self.local else from_hub(name, split, cache_dir)
        self.title = f"{shown(name)} ({split})"
        self.where = f"data.name={shown(name)} data.split={split}"
        self.image_key = column(dataset.features, (datasets.Image,), image_key, "image", "data.image_key")
        if self.image_key is None:
            raise UsageError(f"{self.where} has no image column: name it with data.image_key=")
        self.label_key = column(dataset.features, (datasets.ClassLabel, datasets.Value), label_key, "class label",
                                "data.label_key")
        self.images = dataset.select_columns([self.image_key])  # a row decodes its image only
        self.dataset = dataset
        files = files_under(self.local) if self.local else [Path(f["filename"]) for f in dataset.cache_files]
        self._state = f"{dataset._fingerprint} {content_digest(Path('/'), [f.resolve() for f in files])}"

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, index: int, image_size: int, channels: int) -> np.ndarray:
        return fitted(self.images[index][self.image_key], image_size, channels)

    def name(self, index: int) -> str:
        """Its row, and the file it was read from where it has one (an image folder's)."""
        import datasets

        undecoded = self.images.cast_column(self.image_key, datasets.Image(decode=False))[index][self.image_key]
        path = undecoded.get("path") if isinstance(undecoded, dict) else None
        return f"row {index} ({path})" if path else f"row {index}"

    def state(self) -> str:
        return self._state

    def key(self) -> str:
        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(self.title).name)[:64]
        return f"{name}-{hashlib.sha1(self.where.encode()).hexdigest()[:8]}"

    @property
    def classes(self) -> list[str]:
        if self.label_key is None:
            return []
        feature = self.dataset.features[self.label_key]
        if hasattr(feature, "names"):  # a ClassLabel
            return list(feature.names)
        values = self.labels()
        if bad := [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 0][:1]:
            raise UsageError(f"data.label_key={self.label_key}: its values are not class numbers (e.g. {bad[0]!r}): "
                             "cast the column to a ClassLabel, or name another with data.label_key=")
        if (count := max(values) + 1) > len(values):
            raise UsageError(f"data.label_key={self.label_key}: its class numbers run to {count - 1}, more classes than "
                             f"the {len(values)} rows: number them 0 to K-1, or cast the column to a ClassLabel")
        return [str(n) for n in range(count)]

    def labels(self) -> list[Any] | None:
        return None if self.label_key is None else list(self.dataset[self.label_key])


class HuggingFaceDataModule(ImageDataModule):
    """Batches of a `datasets` dataset (see ImageDataModule for the options). name: a Hub id or a
    local path (a save_to_disk folder, or a folder of images); split: which split; image_key,
    label_key: the columns (found by their features when null); root: where a Hub dataset is
    downloaded and prepared, and an image folder prepared for the run (null: datasets' own
    cache, ~/.cache/huggingface, and the system's temporary folder)."""

    def __init__(self, name: str, split: str = "train", image_key: str | None = None, label_key: str | None = None,
                 root: str | None = None, **options: Any):
        super().__init__(**options)
        self.name, self.split, self.image_key, self.label_key = name, split, image_key, label_key
        self.root = root and Path(root).expanduser()

    def _source(self) -> HuggingFace:
        return HuggingFace(self.name, self.split, self.image_key, self.label_key, self.root)
