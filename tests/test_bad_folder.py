"""A folder of images as real disks, downloads and users leave it: whatever it holds, training
skips what cannot be read (counted, in one warning) or stops with one line naming the path and
the fix; never a hang, a traceback or stale pixels."""

import os
import shutil
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import formats
from damage import (
    ODD_ENTRIES,
    as_chw,
    bmp,
    image_folder,
    not_root,
    one_line_error,
    pictures,
    train_py,
    trained_images,
    within,
)
from dcgan.data.folder import ImageFolderDataModule
from dcgan.errors import UsageError


def module(root: Path, **options) -> ImageFolderDataModule:
    return ImageFolderDataModule(str(root), **{"image_size": 16, "batch_size": 2, "num_workers": 0, **options})


@pytest.mark.parametrize("cache_dir", [True, False], ids=["cache_dir", "no_cache_dir"])
@pytest.mark.parametrize("cache", ["device", False])
@pytest.mark.parametrize("name", ODD_ENTRIES)
def test_entries_that_are_not_files_are_skipped_and_counted_without_being_opened(tmp_path: Path, name: str, cache,
                                                                                  cache_dir: bool):
    root = image_folder(tmp_path / "images")
    ODD_ENTRIES[name](root / name)
    dm = module(root, cache=cache, cache_dir=str(tmp_path / "cache") if cache_dir else None)
    with within(20), pytest.warns(UserWarning, match=f"skipped 1 images of data.root=.*: {name}$") as warned:
        dm.prepare_data()  # the cache's key and build, where there is a cache_dir
        images = trained_images(dm)
    assert len([w for w in warned if "skipped" in str(w.message)]) == 1
    assert torch.equal(images, as_chw(pictures()))


def test_all_of_them_at_once_with_worker_processes_on_both_paths(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    for name, make in ODD_ENTRIES.items():
        make(root / name)
    for cache in ("disk", False):  # workers decode for the cache's build, and per batch without one
        dm = module(root, cache=cache, cache_dir=str(tmp_path / "cache"), num_workers=1)
        with within(30), pytest.warns(UserWarning, match="skipped 5 images .*dangling.png, loop.png, pipe.png, "
                                                         "socket.png, zero.png"):
            dm.prepare_data()
            dm.setup("fit")
            batches = list(dm.train_dataloader())
        assert sum(len(batch) for batch in batches) == 6, cache


def test_an_unreadable_file_is_skipped_and_read_once_it_can_be(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    (root / "secret.png").write_bytes(formats.png(pictures(1, seed=1)[0]))
    (root / "secret.png").chmod(0)
    with not_root():
        dm = module(root, cache_dir=str(tmp_path / "cache"))
        dm.prepare_data()
        with pytest.warns(UserWarning, match="skipped 1 images .*secret.png"):
            assert len(trained_images(dm)) == 6
    (root / "secret.png").chmod(0o644)  # the key changes with it: no stale list of bad images
    with not_root(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(trained_images(module(root, cache_dir=str(tmp_path / "cache")))) == 7


def test_a_subfolder_that_cannot_be_listed_is_named_and_the_rest_trains(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    image_folder(root / "private", count=2)
    (root / "private").chmod(0)
    try:
        with not_root(), pytest.warns(UserWarning, match=r"skipped 1 subfolders that cannot be listed: private "
                                                         r"\(Permission denied\)"):
            assert len(trained_images(module(root))) == 6
    finally:
        (root / "private").chmod(0o755)


def test_a_root_that_cannot_be_listed_is_one_line(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    root.chmod(0)
    try:
        with not_root(), pytest.raises(UsageError, match=r"data.root=.*images cannot be listed \(Permission denied\): "
                                                         "give the user running training read access to it"):
            module(root).source  # noqa: B018
    finally:
        root.chmod(0o755)


def test_damaged_files_are_skipped_and_counted_in_one_warning(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    whole = (root / "0.png").read_bytes()
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "._0.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))  # macOS's AppleDouble file beside a copy
    (root / "notes.png").write_text("a text file with an image's name")
    Image.new("L", (1, 1)).save(root / "bomb.png")
    data = bytearray((root / "bomb.png").read_bytes())
    data[16:24] = (60000).to_bytes(4, "big") * 2  # its header claims 60000x60000: PIL refuses a decompression bomb
    data[29:33] = zlib.crc32(data[12:29]).to_bytes(4, "big")
    (root / "bomb.png").write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"skipped 5 images .*: \._0.png, bomb.png, empty.jpg, notes.png, "
                                         "truncated.png$") as warned:
        images = trained_images(module(root, cache_dir=str(tmp_path / "cache")))
    assert len(warned) == 1 and torch.equal(images, as_chw(pictures()))


@pytest.mark.parametrize("size", [16, 256], ids=["hashed_whole", "first_and_last_blocks"])
def test_an_image_replaced_keeping_its_name_size_and_times_is_decoded_again(tmp_path: Path, size: int):
    root = tmp_path / "images"
    root.mkdir()
    old, new = pictures(2, size=size, seed=3)
    new[: size * 2 // 5], new[size * 3 // 5 :] = old[: size * 2 // 5], old[size * 3 // 5 :]  # a retouch of the middle
    (root / "a.bmp").write_bytes(bmp(old))  # uncompressed: same size, and at 256 no byte in the first or last 64 KiB differs
    status = (root / "a.bmp").stat()
    dm = module(root, image_size=size, batch_size=1, cache="disk", cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    assert torch.equal(trained_images(dm), as_chw(old[None]))
    (root / "a.bmp").write_bytes(bmp(new))  # as cp -p or rsync -a would leave it
    os.utime(root / "a.bmp", ns=(status.st_atime_ns, status.st_mtime_ns))
    assert (root / "a.bmp").stat().st_size == status.st_size
    again = module(root, image_size=size, batch_size=1, cache="disk", cache_dir=str(tmp_path / "cache"))
    again.prepare_data()
    assert torch.equal(trained_images(again), as_chw(new[None]))


def test_the_key_is_the_content_so_a_copy_put_in_place_is_read_from_the_cache_unless_a_pixel_differs(tmp_path: Path):
    root, cache_dir = image_folder(tmp_path / "images"), tmp_path / "cache"
    module(root, cache="disk", cache_dir=str(cache_dir)).prepare_data()
    (array,) = cache_dir.glob("*.u8")
    built = array.stat().st_ino
    shutil.copytree(root, tmp_path / "copy", copy_function=shutil.copy2)  # cp -a: new inodes and change times
    shutil.rmtree(root)
    (tmp_path / "copy").rename(root)
    module(root, cache="disk", cache_dir=str(cache_dir)).prepare_data()
    assert array.stat().st_ino == built  # the same content: not decoded again (another node's copy shares it)
    status = (root / "2.png").stat()
    changed = pictures()
    changed[2] = changed[2, ::-1]  # the same pixels upside down: a PNG of the same size
    (root / "2.png").write_bytes(formats.png(changed[2]))
    os.utime(root / "2.png", ns=(status.st_atime_ns, status.st_mtime_ns))
    assert (root / "2.png").stat().st_size == status.st_size
    assert torch.equal(trained_images(module(root, cache="disk", cache_dir=str(cache_dir))), as_chw(changed))


def test_files_added_and_removed_between_runs_are_seen(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    cache_dir = str(tmp_path / "cache")
    assert len(trained_images(module(root, cache_dir=cache_dir))) == 6
    (root / "0.png").unlink()
    (root / "new.png").write_bytes(formats.png(pictures(1, seed=9)[0]))
    images = trained_images(module(root, cache_dir=cache_dir))
    assert torch.equal(images, as_chw(np.concatenate([pictures()[1:], pictures(1, seed=9)])))


def test_odd_names_and_layouts_train(tmp_path: Path):
    root = tmp_path / ("a" * 240)  # a long folder name: the cache's file names must still fit in 255 bytes
    image_folder(root)
    (root / "-leading dash.png").write_bytes(formats.png(pictures(1, seed=4)[0]))
    (root / "new\nline.PNG").write_bytes(formats.png(pictures(1, seed=5)[0]))
    (root / "folder.png").mkdir()  # a folder named like an image: looked into, not read
    (root / "folder.png" / "inside.png").write_bytes(formats.png(pictures(1, seed=6)[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm = module(root, cache="disk", cache_dir=str(tmp_path / "cache"))
        dm.prepare_data()
        assert len(trained_images(dm)) == 9


def test_links_between_sibling_folders_are_followed_once(tmp_path: Path):
    root = tmp_path / "images"
    image_folder(root / "a", count=2)
    image_folder(root / "b", count=2, seed=1)
    (root / "a" / "to_b").symlink_to(root / "b")
    (root / "b" / "to_a").symlink_to(root / "a")  # with to_b, a loop no single link shows
    with within(30), pytest.warns(UserWarning, match="not following .*: each links to a folder it is in or one "
                                                     "listed already"):
        files = module(root).files
    assert len(files) <= 6 and {f.name for f in files} == {"0.png", "1.png"}


@pytest.mark.parametrize("make", ["missing", "file", "zip", "fifo"])
def test_a_root_that_is_not_a_folder_is_one_line_naming_the_fix(tmp_path: Path, make: str):
    root = tmp_path / "data"
    if make == "file":
        root.write_bytes(formats.png(pictures(1)[0]))
    elif make == "zip":
        formats.stylegan_zip(root, pictures(2), None)
    elif make == "fifo":
        os.mkfifo(root)
    fix = r" \(data=zip reads a zip\)" if make == "zip" else "$"
    with within(30), pytest.raises(UsageError, match=f"^data.root=.*data is not a folder: point data.root at a "
                                                     f"folder of images{fix}"):
        module(root).source  # noqa: B018


def test_a_folder_whose_every_entry_is_bad_is_one_line(tmp_path: Path):
    root = tmp_path / "images"
    root.mkdir()
    for name, make in ODD_ENTRIES.items():
        make(root / name)
    with within(30), pytest.raises(UsageError, match="data.root=.*images: none of its 5 images can be read"):
        trained_images(module(root))


@pytest.mark.slow
def test_train_py_trains_past_a_fifo_and_a_dangling_link_and_stops_in_one_line_on_a_file(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    ODD_ENTRIES["pipe.png"](root / "pipe.png")
    ODD_ENTRIES["dangling.png"](root / "dangling.png")
    result = train_py(tmp_path, f"data.root={root}", "data.num_workers=1")
    assert result.returncode == 0, result.stderr
    assert "skipped 2 images" in result.stderr and "dangling.png, pipe.png" in result.stderr
    assert "Traceback" not in result.stderr
    error = one_line_error(train_py(tmp_path, f"data.root={root / '0.png'}"))
    assert error.startswith("error: data.root=") and error.endswith("is not a folder: point data.root at a folder of "
                                                                    "images")
