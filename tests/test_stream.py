"""Streaming shards (litdata): shards.py writes any source's images as chunks, data=stream trains
on them, each rank its own share, and a run stopped mid-epoch resumes to the weights of an
uninterrupted one."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

import formats
from conftest import ROOT, run_script
from dcgan.data.folder import ImageFolderDataModule
from dcgan.data.stream import StreamDataModule
from dcgan.errors import UsageError
from test_parallel import probe, train_py
from test_resume import assert_same_weights, weights
from train import train

LABELS = np.arange(30) % 3


def test_shards_py_refuses_a_folder_it_did_not_write_in_one_line_and_leaves_it_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """litdata's writer deletes every *.bin in its output folder: a user's folder is refused before."""
    images = formats.folder(tmp_path / "images", np.zeros((2, 20, 20, 3), dtype=np.uint8), np.array([0, 1]))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "weights.bin").write_bytes(b"a user's")
    monkeypatch.chdir(tmp_path)
    said = run_script("shards.py", "data=folder", f"data.root={images}", "data.image_size=16", f"output_dir={mine}",
                      f"paths.data_dir={tmp_path / 'data'}")  # python shards.py, in this process
    assert said == (  # the line python shards.py exits with
        f"error: output_dir={mine} already holds files shards.py did not write (weights.bin); writing shards there "
        "would delete its *.bin and index.json files: name a new or empty folder")
    assert [p.name for p in mine.iterdir()] == ["weights.bin"] and (mine / "weights.bin").read_bytes() == b"a user's"
    with pytest.raises(UsageError, match="holds no shards written by shards.py"):  # nor is it read as shards
        StreamDataModule(str(mine), image_size=16)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder of 30 images in three classes and one that cannot be read, and its shards, written by shards.py."""
    tmp = tmp_path_factory.mktemp("stream")
    images = np.random.default_rng(0).integers(0, 256, (30, 20, 20, 3), dtype=np.uint8)
    root = formats.folder(tmp / "images", images, LABELS)
    (root / "class0" / "broken.png").write_bytes(b"not an image")
    out = tmp / "shards"
    done = subprocess.run([sys.executable, str(ROOT / "shards.py"), "data=folder", f"data.root={root}",
                           "data.image_size=16", "data.num_workers=1", f"output_dir={out}",
                           f"paths.data_dir={tmp / 'data'}"], cwd=tmp, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"dcgan: wrote 30 of the 31 images of {root} at 16x16 to {out}; train on them with: python train.py " \
           f"data=stream data.root={out} data.image_size=16 data.channels=3" in done.stdout
    return root, out


@pytest.mark.slow  # shards.py's process writes the shards (litdata's writer spawns its own)
def test_the_shards_hold_the_sources_images_and_classes(shards: tuple[Path, Path]):
    root, out = shards
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broken image, skipped
        folder = ImageFolderDataModule(str(root), image_size=16, batch_size=4, num_workers=0, labels=True)
        folder.setup("fit")
    expected = sorted((image.numpy().tobytes(), folder.classes[label]) for image, label in
                      zip(folder.images, folder.image_labels))
    stream = StreamDataModule(str(out), image_size=16, batch_size=4, num_workers=0, labels=True)
    stream.setup("fit")
    got = sorted((np.asarray(item["image"]).tobytes(), stream.classes[item["label"]]) for item in stream.dataset)
    assert got == expected
    batch = next(iter(stream.train_dataloader()))
    images, labels = stream.on_after_batch_transfer(batch, 0)
    assert images.shape == (4, 3, 16, 16) and images.min() >= -1 and labels.dtype == torch.int64


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_a_stream_run_stopped_mid_epoch_resumes_to_the_uninterrupted_weights(run_config, tmp_path: Path,
                                                                          shards: tuple[Path, Path], workers: int):
    def run(name: str, *overrides: str) -> Path:
        train(run_config("experiment=cifar32", "data=stream", f"data.root={shards[1]}", "data.image_size=16",
                         "data.batch_size=4", f"data.num_workers={workers}", "data.labels=true", "data.hflip=true",
                         "trainer.max_epochs=2", "~callbacks.quality", "~callbacks.figures", "~callbacks.image_grids",
                         f"paths.output_dir={tmp_path / name}", *overrides))
        return tmp_path / name

    whole = weights(run("whole"))
    with pytest.raises(SIGTERMException):  # after iteration 4 of the first epoch's 7
        run("cut", "+callbacks.interrupt={_target_: probes.Interrupt, after: 4, signal: TERM}")
    resumed = run("resumed", f"ckpt_path={tmp_path / 'cut' / 'checkpoints' / 'last.ckpt'}")
    assert_same_weights(weights(resumed), whole)


@pytest.mark.slow
def test_shards_that_do_not_fit_the_run_are_one_line(shards: tuple[Path, Path], tmp_path: Path):
    with pytest.raises(UsageError, match="holds 16x16 images with 3 channels: set data.image_size=16"):
        StreamDataModule(str(shards[1]), image_size=32)
    with pytest.raises(UsageError, match="holds no shards written by shards.py"):
        StreamDataModule(str(tmp_path), image_size=16)


@pytest.mark.slow
def test_two_ranks_each_stream_their_own_share(tmp_path: Path, digits_root: Path, shards: tuple[Path, Path]):
    train_py(tmp_path, digits_root, "trainer=ddp_sim", "data=stream", f"data.root={shards[1]}", "data.channels=3",
             "data.batch_size=4", "data.num_workers=0", "~callbacks.quality", probe(tmp_path / "probe"))
    ranks = [json.loads((tmp_path / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks) and ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["images"] and ranks[1]["images"] and set(ranks[0]["images"]).isdisjoint(ranks[1]["images"])

