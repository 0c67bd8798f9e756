"""LSUN's LMDBs given what real disks hand them: records added or replaced between runs, two
LMDBs whose paths differ only in digits, damaged or missing databases, a damaged list of keys,
values that are no image. The list of keys lives in data.cache_dir keyed by the LMDB's path and
state (never in the working directory or the dataset's folder) and is never stale."""

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import formats
from conftest import ROOT, compose_config
from dcgan.config import instantiate_node
from dcgan.errors import UsageError

pytestmark = pytest.mark.filterwarnings("ignore:.*does not have many workers.*")


def pictures(count: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 16, 16, 3), dtype=np.uint8)


def datamodule(tmp_path: Path, root: Path, *overrides: str):
    cfg = compose_config(["experiment=cifar32", "data=torchvision", "data.name=LSUN", f"data.root={root}",
                          "data.split=bedroom_train", "data.image_size=16", "data.batch_size=2", "data.num_workers=0",
                          f"paths.data_dir={tmp_path / 'data'}", *overrides])
    return instantiate_node(cfg.data, "data")


def trained_on(dm) -> bytes:
    dm.setup("fit")
    return dm.images.numpy().tobytes()


def expected(images: np.ndarray) -> bytes:
    return images.transpose(0, 3, 1, 2).tobytes()


def put(root: Path, images: dict[int, bytes], category: str = "bedroom_train") -> None:
    import lmdb

    gc.collect()  # the readers of earlier runs are gone (an LMDB opens once per process)
    with lmdb.open(str(root / f"{category}_lmdb"), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for i, value in images.items():
            txn.put(f"{i:040d}".encode(), value)


def refused(tmp_path: Path, root: Path, *overrides: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as error:
        datamodule(tmp_path, root, *overrides).setup("fit")
    assert "\n" not in str(error.value)


def test_records_added_between_runs_are_read_not_skipped(tmp_path: Path):
    images = pictures(8)
    root = formats.lsun(tmp_path / "lsun", images[:6])
    assert trained_on(datamodule(tmp_path, root)) == expected(images[:6])
    put(root, {6: formats.png(images[6]), 7: formats.png(images[7])})
    assert trained_on(datamodule(tmp_path, root)) == expected(images)


def test_a_record_replaced_in_place_is_seen_by_the_next_run(tmp_path: Path):
    images, other = pictures(), pictures(seed=1)
    root = formats.lsun(tmp_path / "lsun", images)
    data = root / "bedroom_train_lmdb" / "data.mdb"
    assert trained_on(datamodule(tmp_path, root)) == expected(images)
    times = data.stat()
    put(root, {3: formats.png(other[3])})
    os.utime(data, ns=(times.st_atime_ns, times.st_mtime_ns))  # as if its time were kept
    now = images.copy()
    now[3] = other[3]
    assert trained_on(datamodule(tmp_path, root)) == expected(now)


def test_two_lmdbs_whose_paths_differ_in_digits_each_read_their_own(tmp_path: Path):
    first, second = pictures(seed=1), pictures(4, seed=2)
    one = formats.lsun(tmp_path / "lsun1", first)
    two = formats.lsun(tmp_path / "lsun2", second)
    assert trained_on(datamodule(tmp_path, one)) == expected(first)
    assert trained_on(datamodule(tmp_path, two)) == expected(second)


def test_nothing_is_written_to_the_working_directory_or_the_datasets_folder(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    root = formats.lsun(tmp_path / "lsun", pictures())
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    trained_on(datamodule(tmp_path, root))
    assert not list(work.iterdir())
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    kept = list((tmp_path / "data" / "cache").glob("bedroom_train_lmdb-*.keys"))
    assert len(kept) == 1  # the list of keys, under paths.data_dir
    trained_on(datamodule(tmp_path / "none", root, "data.cache_dir=null"))
    assert not (tmp_path / "none").exists()


def test_a_damaged_list_of_keys_is_made_again(tmp_path: Path):
    images = pictures()
    root = formats.lsun(tmp_path / "lsun", images)
    datamodule(tmp_path, root, "data.cache=false").setup("fit")
    kept = next((tmp_path / "data" / "cache").glob("*.keys"))
    kept.write_bytes(kept.read_bytes()[:-30])  # cut short
    assert trained_on(datamodule(tmp_path, root, "data.cache=device")) == expected(images)


def test_a_damaged_or_missing_lmdb_is_one_line_naming_it(tmp_path: Path):
    root = formats.lsun(tmp_path / "lsun", pictures())
    data = root / "bedroom_train_lmdb" / "data.mdb"
    whole = data.read_bytes()
    data.write_bytes(b"\0" * len(whole))  # zeroed, as a failed copy leaves it
    refused(tmp_path, root, match=r"bedroom_train_lmdb is not a readable LMDB .*python download.py -c bedroom")
    data.write_bytes(whole[:4096])  # truncated
    refused(tmp_path, root, match=r"bedroom_train_lmdb is not a readable LMDB")
    data.unlink()
    refused(tmp_path, root, match=r"bedroom_train_lmdb is not a readable LMDB")


def test_categories_that_are_not_there_name_those_that_are(tmp_path: Path):
    root = formats.lsun(tmp_path / "lsun", pictures(), category="church_outdoor_train")
    refused(tmp_path, root, match=r"data.split=bedroom_train: .* has no bedroom_train_lmdb folder; it holds the "
                                  r"categories church_outdoor_train")
    refused(tmp_path, root, "data.split=train", match=r"has no bedroom_train_lmdb folder")
    refused(tmp_path, tmp_path / "nowhere", match=r"data.root=.*nowhere is not a folder")
    refused(tmp_path, tmp_path, match=r"holds no LSUN LMDB")
    refused(tmp_path, root, "data.download=true", match=r"torchvision cannot download LSUN")


def test_values_that_are_no_image_are_skipped_and_counted_and_classes_follow_categories(tmp_path: Path):
    images = pictures()
    root = formats.lsun(tmp_path / "lsun", images, corrupt=1)
    put(root, {4: formats.png(images[4])[:60]})  # a truncated PNG
    formats.lsun(root, images[:2], category="tower_train")
    dm = datamodule(tmp_path, root, "data.split='bedroom_train,tower_train'", "data.labels=true")
    with pytest.warns(UserWarning, match=r"skipped 2 images .*LSUN bedroom_train record 1, LSUN bedroom_train record 4"):
        dm.setup("fit")
    assert dm.classes == ["bedroom_train", "tower_train"] and dm.image_labels.tolist() == [0, 0, 0, 0, 1, 1]


@pytest.mark.slow
def test_train_py_on_a_damaged_lmdb_prints_one_line_and_fails(tmp_path: Path):
    root = formats.lsun(tmp_path / "lsun", pictures())
    (root / "bedroom_train_lmdb" / "data.mdb").write_bytes(b"not an lmdb")
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "data=torchvision", "data.name=LSUN",
                           f"data.root={root}", "data.split=bedroom_train", f"paths.data_dir={tmp_path}",
                           "trainer.accelerator=cpu"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: data.name=LSUN: ")
