"""Writing any source's images as litdata shards (shards.py; read back by stream.py): decoded at
the run's size, records that cannot be decoded left out and counted, into a folder that holds
nothing else. litdata's writer deletes every *.bin and index.json in its output folder, so a
folder is written only when it is empty, missing, or shards.py's own (its META and chunks only)."""

import json
import re
from typing import Any

from dcgan.data.cache import decoded
from dcgan.data.classes import checked_labels
from dcgan.data.module import ImageDataModule
from dcgan.data.source import said
from dcgan.data.stream import META, checked_chunks, filesystem, litdata
from dcgan.errors import UsageError

# what shards.py and litdata's writer leave in an output folder (N.index.json: a writer's part, while it runs)
OWN = re.compile(r"(dcgan\.json|index\.json|\d+\.index\.json|chunk-\d+-\d+(\.\w+)?\.bin|\.checkpoints)")
CHUNK_BYTES = re.compile(r"\d+(\.\d+)? *[KMGT]?B?", re.IGNORECASE)  # what litdata reads as a size: 64MB, 1.5GB


class _Record:
    """A source's record as a chunk's item (picklable, for litdata's writer processes)."""

    def __init__(self, datamodule: ImageDataModule, labels: list[int] | None):
        self.source, self.size, self.channels = datamodule.source, datamodule.image_size, datamodule.channels
        self.labels = labels

    def __call__(self, index: int):
        try:
            image = self.source.read(index, self.size, self.channels)
        except Exception:  # noqa: BLE001 a record that cannot be decoded is left out, as training skips it
            return
        yield {"image": image.transpose(2, 0, 1).copy(), "label": self.labels[index] if self.labels else -1}


def written_labels(datamodule: ImageDataModule) -> tuple[list[str], list[int] | None]:
    """The classes and labels written with the shards: the source's, whenever it has them (so that
    data=stream data.labels=true can train on them); labels it cannot give (a folder with images
    at its top and in subfolders, a label past the classes) stop the write only with data.labels=true."""
    try:
        classes = datamodule.source.classes
        return classes, checked_labels(datamodule.source) if classes else None
    except UsageError:
        if datamodule.labels:
            raise
        return [], None


def claimed(output_dir: str) -> None:
    """Make output_dir shards.py's (META saying it is being written), or refuse it: a file, or a
    folder holding anything shards.py did not write (litdata's writer would delete its *.bin)."""
    fs, path = filesystem(output_dir, "output_dir")
    try:
        if fs.isfile(path):
            raise UsageError(f"output_dir={output_dir} is a file: name a new or empty folder for the shards")
        names = [name.rstrip("/").rsplit("/", 1)[-1] for name in fs.ls(path, detail=False)] if fs.isdir(path) else []
        foreign = sorted(name for name in names if not OWN.fullmatch(name))
        if foreign or (names and META not in names):
            shown = ", ".join((foreign or names)[:3]) + (" ..." if len(foreign or names) > 3 else "")
            raise UsageError(f"output_dir={output_dir} already holds files shards.py did not write ({shown}); writing "
                             "shards there would delete its *.bin and index.json files: name a new or empty folder")
        fs.makedirs(path, exist_ok=True)
        with fs.open(f"{path.rstrip('/')}/{META}", "w") as file:  # an unfinished write is shards.py's to redo
            json.dump({"writing": True}, file)
    except OSError as error:
        raise UsageError(f"output_dir={output_dir} cannot be written ({said(error)}): name a folder you can write to") \
            from None


def writer_failed(error: RuntimeError, output_dir: str) -> Exception:
    """What a failure inside litdata's writer processes is to the user: it reaches this process as
    a RuntimeError holding the worker's traceback as text. A disk error (full, read-only, no
    permission) is one line; anything else is a bug and keeps its traceback."""
    found = re.findall(r"^\w*(?:OSError|Error): \[Errno \d+\] ([^\n]*)", str(error), re.MULTILINE)
    if not found:
        return error
    return UsageError(f"output_dir={output_dir}: the shards could not be written ({found[-1]}): free space there or "
                      "name another folder; the shards written so far stay marked unfinished, so running shards.py "
                      "again writes them anew")


def write_shards(datamodule: ImageDataModule, output_dir: str, chunk_bytes: str = "64MB") -> int:
    """Write datamodule's images, decoded at its image_size and channels, as litdata chunks in
    output_dir, with META beside them; returns how many were written."""
    if not isinstance(datamodule, ImageDataModule):  # data=stream: shards already
        raise UsageError(f"data={type(datamodule).__name__} cannot be written as shards: name the preset of the data "
                         "they come from (data=folder, zip, torchvision, huggingface)")
    if not CHUNK_BYTES.fullmatch(chunk_bytes) or chunk_bytes.strip().isdigit():  # a bare number has no unit
        raise UsageError(f"chunk_bytes={chunk_bytes} is not a size: e.g. chunk_bytes=64MB (B, KB, MB, GB, TB)")
    source = datamodule.source
    streaming = litdata()
    wanted = range(len(source))
    if datamodule.on_bad_image == "error":  # refused before a shard is written, as training would refuse it
        _, bad = decoded(source, datamodule.image_size, datamodule.channels, datamodule.cache_dir,
                         datamodule.num_workers, pixels=False)
        datamodule._handle_bad(bad)
    classes, labels = written_labels(datamodule)
    claimed(output_dir)
    try:
        streaming.optimize(fn=_Record(datamodule, labels), inputs=list(wanted), output_dir=output_dir,
                           chunk_bytes=chunk_bytes, num_workers=max(1, datamodule.num_workers), mode="overwrite",
                           verbose=False)
    except RuntimeError as error:
        raise writer_failed(error, output_dir) from None
    count = sum(chunk["chunk_size"] for chunk in checked_chunks(output_dir, "output_dir"))
    if not count:
        raise UsageError(f"{source.where}: none of its {len(source)} images can be read, so no shards were written")
    meta: dict[str, Any] = {"image_size": datamodule.image_size, "channels": datamodule.channels, "images": count,
                            "classes": classes, "from": source.where}
    fs, path = filesystem(output_dir, "output_dir")
    with fs.open(f"{path.rstrip('/')}/{META}", "w") as file:  # last: it vouches for the chunks
        json.dump(meta, file)
    return count
