"""The decoded-image cache (data.cache_dir, every tier) as disks and users leave it: a damaged,
truncated, missing, foreign or changed record is decoded again with one warning, a cache_dir
that cannot hold it is one line naming it and the fix; never a traceback, a hang or stale pixels."""

import json
import os
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import torch

import formats
from conftest import compose_config
from damage import as_chw, image_folder, not_root, one_line_error, pictures, train_py, trained_images, within
from dcgan.config import check_config, instantiate_node
from dcgan.data.folder import ImageFolderDataModule
from dcgan.errors import UsageError
from train import TOP_LEVEL


def module(root: Path, cache_dir: Path, **options) -> ImageFolderDataModule:
    return ImageFolderDataModule(str(root), **{"image_size": 16, "batch_size": 2, "num_workers": 0, "cache": "disk",
                                               "cache_dir": str(cache_dir), **options})


def built(tmp_path: Path, **options) -> tuple[Path, Path]:
    """A folder of pictures() and its cache, built: (root, cache_dir)."""
    root, cache_dir = image_folder(tmp_path / "images"), tmp_path / "cache"
    dm = module(root, cache_dir, **options)
    dm.prepare_data()
    assert torch.equal(trained_images(dm), as_chw(pictures()))
    return root, cache_dir


def record(cache_dir: Path, suffix: str) -> Path:
    (path,) = cache_dir.glob(f"*{suffix}")
    return path


def from_config(tmp_path: Path, *overrides: str):
    """The DataModule train.py builds for these options (the schema checked, errors under their keys)."""
    cfg = compose_config(["data=folder", f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}",
                          "data.batch_size=2", "data.num_workers=0", *overrides])
    check_config(cfg, TOP_LEVEL)
    return instantiate_node(cfg.data, "data")


def overwritten(path: Path) -> None:
    time.sleep(0.05)  # a later write, as any would be: past the file system clock's next tick
    path.write_bytes(bytes(path.stat().st_size))


DAMAGE = {
    "truncated array": (".u8", lambda path: os.truncate(path, path.stat().st_size // 2), "was changed since"),
    "array overwritten": (".u8", lambda path: overwritten(path), "was changed since"),
    "array missing": (".u8", Path.unlink, "is missing"),
    "array a FIFO": (".u8", lambda path: (path.unlink(), os.mkfifo(path)), "cannot be read \\(a FIFO\\)"),
    "record truncated": (".json", lambda path: path.write_text(path.read_text()[:20]), "is damaged"),
    "record garbage": (".json", lambda path: path.write_bytes(os.urandom(300)), "is damaged"),
    "record empty": (".json", lambda path: path.write_bytes(b""), "is damaged"),
    "record of another tool": (".json", lambda path: path.write_text('["a", "list"]'), "not a cache record"),
    "record edited": (".json", lambda path: path.write_text(json.dumps({**json.loads(path.read_text()),
                                                                       "bad": [99]})), "do not fit the data"),
    "record a FIFO": (".json", lambda path: (path.unlink(), os.mkfifo(path)), "is damaged .*is a FIFO"),
}


@pytest.mark.parametrize("tier", ["device", "host", "disk"])
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_cache_is_decoded_again_with_one_warning(tmp_path: Path, damage: str, tier: str):
    root, cache_dir = built(tmp_path, cache=tier)
    suffix, make, said = DAMAGE[damage]
    make(record(cache_dir, suffix))
    with within(20), pytest.warns(UserWarning, match=f"data.cache_dir=.*cache: .*{suffix}.* {said}.*: decoding the "
                                                     "images again") as warned:
        dm = module(root, cache_dir, cache=tier)
        dm.prepare_data()
        images = trained_images(dm)
    assert len(warned) == 1 and torch.equal(images, as_chw(pictures()))
    with within(20), warnings.catch_warnings(record=True) as again:  # rebuilt whole: the next run reads it quietly
        assert torch.equal(trained_images(module(root, cache_dir, cache=tier)), as_chw(pictures()))
    assert not [w for w in again if "cache_dir" in str(w.message)]


def test_records_of_an_older_version_and_debris_of_a_killed_run_are_passed_over(tmp_path: Path):
    root, cache_dir = built(tmp_path)
    path = record(cache_dir, ".json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "state": "4 " + "0" * 40}))
    (cache_dir / f"{record(cache_dir, '.u8').name}.partial99999").write_bytes(b"half an array")
    with warnings.catch_warnings(record=True) as warned:
        assert torch.equal(trained_images(module(root, cache_dir)), as_chw(pictures()))
    assert not [w for w in warned if "cache_dir" in str(w.message)]


def test_refresh_decodes_again_a_cache_that_is_current(tmp_path: Path):
    root, cache_dir = built(tmp_path)
    before = record(cache_dir, ".u8").stat().st_ino
    dm = from_config(tmp_path, f"data.root={root}", "data.cache=refresh", f"data.cache_dir={cache_dir}")
    assert dm.tier == "device"  # refresh chooses the tier as auto does
    dm.prepare_data()
    rebuilt = record(cache_dir, ".u8").stat().st_ino
    assert rebuilt != before
    assert torch.equal(trained_images(dm), as_chw(pictures()))
    assert record(cache_dir, ".u8").stat().st_ino == rebuilt  # once per run: setup reads what prepare_data built


def test_an_array_replaced_while_a_run_has_it_mapped_does_not_change_that_run(tmp_path: Path):
    root, cache_dir = built(tmp_path)
    first = module(root, cache_dir)
    first.setup("fit")
    (root / "0.png").write_bytes(formats.png(pictures(1, seed=5)[0]))  # another run rebuilds it meanwhile
    trained_images(module(root, cache_dir))
    assert torch.equal(first.images, as_chw(pictures()))


def test_a_cache_dir_that_is_a_file_is_one_line(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    (tmp_path / "cache").write_text("a file")
    with pytest.raises(UsageError, match=r"^data.cache_dir=.*cache is not a folder: point data.cache_dir at a folder "
                                         r"\(made when missing\), or set data.cache_dir=null"):
        module(root, tmp_path / "cache").prepare_data()
    with pytest.raises(UsageError, match=r"^data.cache_dir=.*cache/below cannot be written \(Not a directory\)"):
        module(root, tmp_path / "cache" / "below").prepare_data()


def test_a_read_only_cache_dir_is_one_line_and_one_holding_the_cache_is_read(tmp_path: Path):
    root, cache_dir = image_folder(tmp_path / "images"), tmp_path / "cache"
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    with not_root(), pytest.raises(UsageError, match=r"^data.cache_dir=.*cache cannot be written \(Permission "
                                                     r"denied\): point data.cache_dir at a writable folder, or set "
                                                     "data.cache_dir=null"):
        module(root, cache_dir).prepare_data()
    cache_dir.chmod(0o755)
    module(root, cache_dir).prepare_data()
    cache_dir.chmod(0o555)  # a cache built once and shared read-only
    with not_root():
        assert torch.equal(trained_images(module(root, cache_dir)), as_chw(pictures()))


def test_a_full_disk_is_one_line(tmp_path: Path):
    root, disk = image_folder(tmp_path / "images", count=40), tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        with pytest.raises(UsageError, match=r"^data.cache_dir=.*small has no room for the decoded images "
                                             r"\(1.9 MB\): free space there, or point data.cache_dir at a larger disk"):
            module(root, disk, image_size=128).prepare_data()
        assert not list(disk.iterdir())  # no partial file left behind
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_disk_without_a_cache_dir_names_the_real_key(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    with pytest.raises(UsageError, match=r"^data.cache=disk keeps the decoded images in data.cache_dir"):
        from_config(tmp_path, f"data.root={root}", "data.cache=disk", "data.cache_dir=null")


@pytest.mark.slow
def test_train_py_stops_in_one_line_on_a_cache_dir_that_is_a_file_and_trains_after_refresh(tmp_path: Path):
    root = image_folder(tmp_path / "images")
    (tmp_path / "taken").write_text("a file")
    error = one_line_error(train_py(tmp_path, f"data.root={root}", f"data.cache_dir={tmp_path / 'taken'}"))
    assert error.startswith(f"error: data.cache_dir={tmp_path / 'taken'} is not a folder")
    for cache in ("disk", "refresh"):
        result = train_py(tmp_path, f"data.root={root}", f"data.cache={cache}")
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
