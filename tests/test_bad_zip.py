"""StyleGAN2-ADA's dataset zip as downloads, copies and users leave it: damaged members are
skipped and counted; a zip that cannot be read at all, or a dataset.json that cannot give the
labels asked for, is one line naming the path and the fix; a changed zip is never served stale."""

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import formats
from damage import as_chw, bmp, not_root, one_line_error, pictures, train_py, trained_images, within
from dcgan.data.zip import ZipDataModule
from dcgan.errors import UsageError

NAMES = [f"00000/img{i:08d}.png" for i in range(6)]


def module(path: Path, **options) -> ZipDataModule:
    return ZipDataModule(str(path), **{"image_size": 16, "batch_size": 2, "num_workers": 0, **options})


def zipped(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def dataset(path: Path, labels=None, extra: dict[str, bytes] | None = None, images: np.ndarray | None = None) -> Path:
    images = pictures() if images is None else images
    members = {name: formats.png(image) for name, image in zip(NAMES, images)}
    if labels is not None:
        members["dataset.json"] = labels if isinstance(labels, bytes) else json.dumps({"labels": labels}).encode()
    return zipped(path, {**members, **(extra or {})})


def test_a_damaged_member_is_skipped_and_counted(tmp_path: Path):
    path = dataset(tmp_path / "data.zip")
    data = bytearray(path.read_bytes())
    start = data.index(formats.png(pictures()[2])[:64])  # stored: the member's bytes as they are
    data[start + 100] ^= 0xFF  # one flipped bit-pattern: its CRC-32 no longer matches
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="skipped 1 images of data.root=.*data.zip .*: 00000/img00000002.png$"):
        images = trained_images(module(path, cache_dir=str(tmp_path / "cache")))
    assert torch.equal(images, as_chw(pictures()[[0, 1, 3, 4, 5]]))


def test_a_member_in_a_compression_zipfile_cannot_read_is_skipped(tmp_path: Path):
    path = dataset(tmp_path / "data.zip")
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local header, central directory
        at = data.index(signature)  # the first member's
        data[at + offset : at + offset + 2] = (9).to_bytes(2, "little")  # Deflate64, as Windows writes large zips
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="skipped 1 images .*00000/img00000000.png$"):
        assert len(trained_images(module(path))) == 5


def test_non_images_and_macos_debris_are_skipped_or_ignored(tmp_path: Path):
    path = dataset(tmp_path / "data.zip", extra={"README.txt": b"hello", "00000/": b"",
                                                  "__MACOSX/00000/._img00000000.png": b"\x00\x05\x16\x07" + bytes(60)})
    with pytest.warns(UserWarning, match="skipped 1 images .*__MACOSX/00000/._img00000000.png$"):
        assert torch.equal(trained_images(module(path)), as_chw(pictures()))


@pytest.mark.parametrize("damage", ["text", "truncated", "empty_file", "html"])
def test_a_file_that_is_not_a_whole_zip_is_one_line(tmp_path: Path, damage: str):
    path = dataset(tmp_path / "data.zip")
    whole = path.read_bytes()
    path.write_bytes({"text": b"PK not really a zip", "truncated": whole[: len(whole) // 2], "empty_file": b"",
                      "html": b"<html><body>Download quota exceeded</body></html>"}[damage])
    with pytest.raises(UsageError, match=r"^data.root=.*data.zip is not a zip file, or a truncated or damaged one "
                                         r"\(.*\): data=zip reads StyleGAN2-ADA's dataset zip whole"):
        module(path).source  # noqa: B018


def test_a_zip_without_images_is_one_line(tmp_path: Path):
    path = zipped(tmp_path / "data.zip", {"dataset.json": b'{"labels": null}', "notes.txt": b"x"})
    with pytest.raises(UsageError, match=r"data.root=.*data.zip holds no images \(no bmp/gif/jpeg/jpg/png/tif/tiff/"
                                         r"webp member\): point data.root at a dataset zip"):
        module(path).source  # noqa: B018


@pytest.mark.parametrize("make", ["missing", "folder", "fifo"])
def test_a_root_that_is_not_a_file_is_one_line(tmp_path: Path, make: str):
    path = tmp_path / "data.zip"
    if make == "folder":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    fix = r" \(data=folder reads a folder\)" if make == "folder" else "$"
    with within(30), pytest.raises(UsageError, match=f"^data.root=.*data.zip is not a file: point it at a dataset "
                                                     f"zip{fix}"):
        module(path).source  # noqa: B018


def test_an_unreadable_zip_is_one_line(tmp_path: Path):
    path = dataset(tmp_path / "data.zip")
    path.chmod(0)
    with not_root(), pytest.raises(UsageError, match=r"data.root=.*data.zip cannot be read \(Permission denied\): "
                                                     "give the user running training read access to it"):
        module(path).source  # noqa: B018


@pytest.mark.parametrize("labels, error", [
    (b"{not json", "its dataset.json cannot be read as"),
    (b"\xff\xfe garbage", "its dataset.json cannot be read as"),
    ([["00000/img00000000.png"]], "its dataset.json cannot be read as"),
    ([[name, 0] for name in NAMES[:4]], "dataset.json has no label for 2 of its images, e.g. 00000/img00000004.png"),
    ([[name, [0.5, 1.0]] for name in NAMES], "dataset.json's labels are not class numbers"),
    ([[name, -1] for name in NAMES], "dataset.json's labels are not class numbers"),
])
def test_a_dataset_json_that_cannot_give_labels_is_one_line_when_labels_are_asked_for(tmp_path: Path, labels,
                                                                                        error: str):
    path = dataset(tmp_path / "data.zip", labels=labels)
    with pytest.raises(UsageError, match=f"data.root=.*data.zip: {error}.*train without labels "
                                         r"\(data.labels=false\)"):
        module(path, labels=True).setup("fit")
    assert len(trained_images(module(path))) == 6  # unconditional training never reads it


def test_a_member_replaced_keeping_its_name_size_and_time_is_decoded_again(tmp_path: Path):
    def bmp_zip(images: np.ndarray) -> Path:  # BMPs: a changed image keeps its size, and the zip its size
        return zipped(tmp_path / "data.zip", {f"img{i}.bmp": bmp(image) for i, image in enumerate(images)})

    path = bmp_zip(pictures())
    status = path.stat()
    cache_dir = str(tmp_path / "cache")
    dm = module(path, cache="disk", cache_dir=cache_dir)
    dm.prepare_data()
    assert torch.equal(trained_images(dm), as_chw(pictures()))
    changed = pictures()
    changed[3] = 255 - changed[3]
    bmp_zip(changed)
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert path.stat().st_size == status.st_size
    again = module(path, cache="disk", cache_dir=cache_dir)
    again.prepare_data()
    assert torch.equal(trained_images(again), as_chw(changed))


def test_an_identical_zip_put_in_place_is_read_from_the_cache(tmp_path: Path):
    path, cache_dir = dataset(tmp_path / "data.zip"), tmp_path / "cache"
    module(path, cache="disk", cache_dir=str(cache_dir)).prepare_data()
    (array,) = cache_dir.glob("*.u8")
    built = array.stat().st_ino
    shutil.copy(path, tmp_path / "copy.zip")  # downloaded again, or synced from another machine
    os.replace(tmp_path / "copy.zip", path)
    module(path, cache="disk", cache_dir=str(cache_dir)).prepare_data()
    assert array.stat().st_ino == built


def test_a_name_stored_twice_is_one_record_read_as_its_last_copy(tmp_path: Path):
    path = dataset(tmp_path / "data.zip")
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as archive:
        archive.writestr(NAMES[0], formats.png(pictures(1, seed=7)[0]))
    images = trained_images(module(path, cache_dir=str(tmp_path / "cache")))
    assert torch.equal(images, as_chw(np.concatenate([pictures(1, seed=7), pictures()[1:]])))


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_every_compression_python_reads_trains(tmp_path: Path, compression: int):
    members = {name: formats.png(image) for name, image in zip(NAMES, pictures())}
    path = zipped(tmp_path / "data.zip", members, compression)
    assert torch.equal(trained_images(module(path, num_workers=1, cache=False)), as_chw(pictures()))


@pytest.mark.slow
def test_train_py_stops_in_one_line_on_a_truncated_zip(tmp_path: Path):
    path = dataset(tmp_path / "data.zip")
    path.write_bytes(path.read_bytes()[:1000])
    error = one_line_error(train_py(tmp_path, "data=zip", f"data.root={path}"))
    assert error.startswith(f"error: data.root={path} is not a zip file, or a truncated or damaged one")
