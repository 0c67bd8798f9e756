"""Streaming shards given what real disks, tools and users hand them: damaged, truncated, missing
or foreign index and chunk files, unfinished writes, shards of another size, a folder of the
user's own as shards.py's output. data=stream refuses damaged shards at the start with one line
(not in a loader worker mid-epoch); shards.py never deletes a file it did not write."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import formats
from conftest import ROOT, compose_config
from dcgan.config import instantiate_node
from dcgan.data.shards import claimed
from dcgan.errors import UsageError


def shards(folder: Path, count: int = 6, labelled: bool = True) -> Path:
    """Real litdata chunks (its own writer, in this process) with shards.py's dcgan.json beside them."""
    from litdata.streaming.writer import BinaryWriter

    folder.mkdir(parents=True)
    writer = BinaryWriter(str(folder), chunk_bytes="64MB")
    for i in range(count):
        writer.add_item(i, {"image": np.full((3, 16, 16), i, np.uint8), "label": i % 3})
    writer.done()
    writer.merge(1)
    (folder / "dcgan.json").write_text(json.dumps({"image_size": 16, "channels": 3, "images": count, "from": "test",
                                                   "classes": ["a", "b", "c"] if labelled else []}))
    return folder


def datamodule(root: Path | str, *overrides: str):
    cfg = compose_config(["data=stream", f"data.root={root}", "data.image_size=16", "data.batch_size=2",
                          "data.num_workers=0", *overrides])
    return instantiate_node(cfg.data, "data")


def refused(root: Path | str, *overrides: str, match: str) -> str:
    with pytest.raises(UsageError, match=match) as error:
        datamodule(root, *overrides).setup("fit")
    message = str(error.value)
    assert "\n" not in message and "data.data." not in message
    return message


def test_good_shards_train(tmp_path: Path):
    dm = datamodule(shards(tmp_path / "s"), "data.labels=true")
    dm.setup("fit")
    images, _ = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (2, 3, 16, 16) and dm.classes == ["a", "b", "c"]


def test_a_damaged_or_foreign_dcgan_json_is_one_line_saying_to_write_them_again(tmp_path: Path):
    root = shards(tmp_path / "s")
    (root / "dcgan.json").write_text('{"image_size": 16, "chan')
    refused(root, match=r"its dcgan.json is damaged .*write them again with python shards.py .* output_dir=")
    (root / "dcgan.json").write_text(json.dumps({"name": "someone else's"}))
    refused(root, match=r"its dcgan.json is not one shards.py wrote")
    (root / "dcgan.json").write_text(json.dumps({"writing": True}))
    refused(root, match=r"shards.py did not finish writing these shards: write them again")


def test_a_damaged_index_or_a_truncated_changed_or_missing_chunk_is_refused_before_training(tmp_path: Path):
    root = shards(tmp_path / "s")
    index = (root / "index.json").read_text()
    (root / "index.json").write_text(index[: len(index) // 2])
    refused(root, match=r"its index.json is damaged \(JSONDecodeError")
    (root / "index.json").write_text(json.dumps({"chunks": "none"}))
    refused(root, match=r"its index.json is damaged \(TypeError")
    (root / "index.json").write_text(index)
    chunk = root / "chunk-0-0.bin"
    whole = chunk.read_bytes()
    chunk.write_bytes(whole[:-100])
    refused(root, match=r"^data.root=\S+: the shard chunk-0-0.bin is damaged \(truncated or changed since it was written")
    chunk.write_bytes(b"\xff" * 4 + whole[4:])  # same size, its header overwritten
    refused(root, match=r"the shard chunk-0-0.bin is damaged")
    chunk.write_bytes(whole[:8] + b"\0" * 12 + whole[20:])  # same size, item offsets zeroed
    refused(root, match=r"the shard chunk-0-0.bin is damaged")
    chunk.unlink()
    refused(root, match=r"chunk-0-0.bin is missing: write them again")


def test_shards_that_do_not_match_their_record_or_the_run_are_refused(tmp_path: Path):
    root = shards(tmp_path / "s")
    meta = json.loads((root / "dcgan.json").read_text())
    (root / "dcgan.json").write_text(json.dumps({**meta, "images": 60}))
    refused(root, match=r"its chunks hold 6 images, dcgan.json says 60")
    refused(shards(tmp_path / "t"), "data.image_size=32", match=r"^data.root=.* holds 16x16 images with 3 channels: set "
                                                                 r"data.image_size=16")
    refused(shards(tmp_path / "u", labelled=False), "data.labels=true",
            match=r"written from data without class labels, so data.labels=true cannot be met")


def test_a_root_that_is_no_folder_of_shards_is_one_line(tmp_path: Path):
    refused(tmp_path / "nowhere", match=r"holds no shards written by shards.py \(no dcgan.json\)")
    (tmp_path / "file").write_text("x")
    refused(tmp_path / "file", match=r"data.root=.*file cannot be read as a folder of shards")
    pytest.importorskip("litdata")
    if "s3fs" not in sys.modules:
        try:
            import s3fs  # noqa: F401
        except ImportError:
            refused("s3://bucket/shards", match=r"data.root=s3://bucket/shards needs a package fsspec reads it through")


def test_shards_py_refuses_a_folder_holding_the_users_files_and_leaves_them(tmp_path: Path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "model.bin").write_bytes(b"weights")
    (user / "index.json").write_text("{}")
    with pytest.raises(UsageError, match=r"output_dir=.*user already holds files shards.py did not write \(model.bin\)"):
        claimed(str(user))
    assert sorted(p.name for p in user.iterdir()) == ["index.json", "model.bin"]
    other = shards(tmp_path / "other")  # litdata's own files, but another tool's dataset (no dcgan.json)
    (other / "dcgan.json").unlink()
    with pytest.raises(UsageError, match=r"already holds files shards.py did not write \(chunk-0-0.bin, index.json\)"):
        claimed(str(other))
    with pytest.raises(UsageError, match=r"output_dir=.*model.bin is a file"):
        claimed(str(user / "model.bin"))
    claimed(str(shards(tmp_path / "own")))  # its own: written again
    claimed(str(tmp_path / "new"))
    assert json.loads((tmp_path / "new" / "dcgan.json").read_text()) == {"writing": True}


def test_shards_py_refuses_shards_as_a_source_and_a_chunk_size_that_is_no_size(tmp_path: Path):
    from dcgan.data.folder import ImageFolderDataModule
    from dcgan.data.shards import write_shards

    with pytest.raises(UsageError, match=r"data=StreamDataModule cannot be written as shards: name the preset"):
        write_shards(datamodule(shards(tmp_path / "s")), str(tmp_path / "out"))
    images = formats.folder(tmp_path / "images", np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]))
    for size in ("64000000", "lots", "64 parsecs"):
        with pytest.raises(UsageError, match=rf"chunk_bytes={size} is not a size: e.g. chunk_bytes=64MB"):
            write_shards(ImageFolderDataModule(str(images), image_size=8, num_workers=0), str(tmp_path / "out"), size)
    assert not (tmp_path / "out").exists()


def test_labels_a_source_cannot_give_stop_a_write_only_when_asked_for(tmp_path: Path):
    from dcgan.data.folder import ImageFolderDataModule
    from dcgan.data.shards import written_labels

    images = formats.folder(tmp_path / "images", np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]))
    (images / "top.png").write_bytes(formats.png(np.zeros((8, 8, 3), np.uint8)))  # beside the class folders
    assert written_labels(ImageFolderDataModule(str(images), num_workers=0)) == ([], None)
    with pytest.raises(UsageError, match=r"has images both at its top level and in subfolders"):
        written_labels(ImageFolderDataModule(str(images), num_workers=0, labels=True))
    (images / "top.png").unlink()
    assert written_labels(ImageFolderDataModule(str(images), num_workers=0)) == (["class0", "class1"], [0, 1])


@pytest.mark.slow
def test_shards_py_errors_are_one_line_and_nothing_of_the_users_is_deleted(tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    root = formats.folder(tmp_path / "images", images, np.array([0, 1, 0, 1]))
    user = tmp_path / "user"
    user.mkdir()
    (user / "model.bin").write_bytes(b"weights")

    def shards_py(*overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "shards.py"), f"data.root={root}", "data.image_size=16",
                               "data.num_workers=0", f"paths.data_dir={tmp_path / 'data'}", *overrides], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=False)

    for overrides, said in (([f"output_dir={user}"], "already holds files shards.py did not write (model.bin)"),
                            ([], "error: output_dir is required"),
                            ([f"output_dir={tmp_path / 'out'}", "data.labels=maybe"], "error: data.labels='maybe'"),
                            ([f"output_dir={tmp_path / 'out'}", "data.on_bad_image=error"], None)):
        done = shards_py(*overrides)
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        if said is None:
            assert done.returncode == 0 and "wrote 4 of the 4 images" in done.stdout
            continue
        assert done.returncode != 0 and said in done.stderr.strip().splitlines()[-1]
    assert (user / "model.bin").read_bytes() == b"weights"
    (root / "class0" / "broken.png").write_bytes(b"not an image")
    done = shards_py(f"output_dir={tmp_path / 'out'}", "data.on_bad_image=error")
    assert done.returncode != 0 and done.stderr.strip().splitlines()[-1].startswith("error: data.root=")


@pytest.mark.slow
def test_train_py_on_damaged_shards_prints_one_line_and_fails(tmp_path: Path):
    root = shards(tmp_path / "s")
    (root / "chunk-0-0.bin").write_bytes(b"cut")
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "data=stream", f"data.root={root}",
                           "data.image_size=16", "trainer.accelerator=cpu", "~callbacks.quality"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the shard chunk-0-0.bin is damaged" in done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_shards_py_on_a_disk_that_fills_up_is_one_line_and_a_rerun_writes_them(tmp_path: Path, small_disk: Path,
                                                                                digits_root: Path):
    def shards_py(size: int) -> subprocess.CompletedProcess:  # the digits at size x size: 1,797 x size^2 bytes
        return subprocess.run([sys.executable, str(ROOT / "shards.py"), "data=digits", f"data.root={digits_root}",
                               f"data.image_size={size}", f"output_dir={small_disk / 'shards'}", "chunk_bytes=256KB",
                               f"paths.data_dir={tmp_path / 'data'}"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, check=False)

    done = shards_py(64)  # 7.4 MB on a 2 MiB disk: litdata's writer process runs out of room
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: output_dir={small_disk / 'shards'}: the shards could not be written (No space left on device): "
        "free space there or name another folder; the shards written so far stay marked unfinished, so running "
        "shards.py again writes them anew")
    done = shards_py(16)  # 0.46 MB: the unfinished shards are shards.py's own, replaced
    assert done.returncode == 0 and "wrote 1,797 of the 1,797 images" in done.stdout, done.stderr[-3000:]
    assert json.loads((small_disk / "shards" / "dcgan.json").read_text())["images"] == 1797
