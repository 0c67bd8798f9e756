"""Nothing earned is lost: bad data, bad config, divergence and preemption, each with a clear
message, and checkpoints that survive them."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning.utilities.exceptions import SIGTERMException

from conftest import ROOT, SHRINK, run_script
from dcgan.data.folder import ImageFolderDataModule
from dcgan.errors import TrainingDiverged, UsageError
from train import train


def folder_with_bad_images(root: Path) -> Path:
    """8 good JPEGs, and 4 files with image names that cannot be decoded."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / f"good{i}.jpg")
    (root / "empty.png").write_bytes(b"")
    (root / "corrupt.jpg").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (root / "text.png").write_text("not a picture")
    whole = (root / "good0.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    return root


@pytest.mark.parametrize("cache", [False, True])
def test_unreadable_images_are_skipped_with_one_warning_that_counts_them(tmp_path: Path, cache: bool):
    dm = ImageFolderDataModule(str(folder_with_bad_images(tmp_path / "images")), image_size=16, batch_size=2,
                               num_workers=0, cache=cache)
    with pytest.warns(UserWarning, match="skipped 4 images") as warned:
        dm.setup("fit")
    assert len(warned) == 1 and len(dm.dataset) == 8
    for name in ("empty.png", "corrupt.jpg", "text.png", "truncated.jpg"):
        assert name in str(warned[0].message)


def test_unreadable_images_can_stop_the_run_with_their_list(tmp_path: Path):
    dm = ImageFolderDataModule(str(folder_with_bad_images(tmp_path / "images")), image_size=16, batch_size=2,
                               num_workers=0, on_bad_image="error")
    with pytest.raises(UsageError, match="4 images cannot be read: corrupt.jpg, empty.png, text.png, truncated.jpg"):
        dm.setup("fit")


@pytest.mark.parametrize("suffix", [".gif", ".tif"])
def test_multi_frame_files_give_their_first_frame(tmp_path: Path, suffix: str):
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:])
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=1, num_workers=0, cache=False)
    dm.setup("fit")
    red, _, blue = dm.dataset[0][:, 8, 8].tolist()
    assert red > 200 and blue < 50


def train_py(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    """python train.py <overrides>, shrunk, with tests/ importable (probes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *SHRINK, *overrides], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("make", ["missing", "empty", "no images"])
def test_a_bad_data_root_is_one_line_naming_it(run_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: str):
    root = tmp_path / "images"
    if make != "missing":
        root.mkdir()
    if make == "no images":
        (root / "notes.txt").write_text("hello")
    expected = "is not a folder" if make == "missing" else "holds no images: expected"
    with pytest.raises(UsageError, match=f"data.root={root} {expected}"):
        train(run_config("experiment=cifar32", f"data.root={root}"))
    if make == "missing":  # as a user sees it: python train.py exits with this line alone, no traceback
        monkeypatch.chdir(tmp_path)
        assert run_script("train.py", *SHRINK, "experiment=cifar32", f"data.root={root}") == \
            f"error: data.root={root} is not a folder: point data.root at a folder of images"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.channels=2", "data.channels must be 1 or 3, got 2"),
        ("model.nz=0", "model.nz must be a positive integer, got 0"),
        ("model.ngf=-4", "model.ngf must be a positive integer, got -4"),
        ("model.ndf=0", "model.ndf must be a positive integer, got 0"),
        ("model.lr=0", "model.lr must be positive, e.g. 2e-4, got 0"),
        ("model.beta1=1.0", "model.beta1 must be in \\[0, 1\\), e.g. 0.5, got 1.0"),
        ("model.beta1=-0.1", "model.beta1 must be in \\[0, 1\\)"),
        ("data.batch_size=0", "data.batch_size must be at least 1, got 0"),
        ("data.image_size=100", "model.image_size must be a power of two in \\[16, 256\\] for the DCGAN networks, "
                                "got 100 \\(it follows data.image_size\\)"),
        ("data.image_size=0", "data.image_size must be a positive number of pixels, got 0"),
    ],
)
def test_out_of_range_values_stop_before_any_work(run_config, tmp_path: Path, override: str, message: str):
    with pytest.raises(UsageError, match=message):
        train(run_config(override))
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_data_with_drop_last_is_refused(run_config):
    with pytest.raises(UsageError, match="data.batch_size=5000 is larger than the 1797 images each device gets"):
        train(run_config("data.batch_size=5000"))


def last_checkpoint(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


def test_divergence_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(run_config, tmp_path: Path):
    with pytest.raises(TrainingDiverged, match="training diverged at iteration 5: train/loss_d=nan, train/loss_g=nan"):
        train(run_config("trainer.max_epochs=2", "+callbacks.poison={_target_: probes.Poison, at: 5}"))
    good = torch.load(last_checkpoint(tmp_path / "run"), weights_only=True)  # from the end of epoch 1
    assert good["epoch"] == 0 and all(torch.isfinite(t).all() for t in good["state_dict"].values())


def test_nan_weights_are_never_checkpointed(run_config, tmp_path: Path):
    with pytest.raises(TrainingDiverged, match="weights became inf or NaN by iteration 7"):
        # the last update of epoch 2 breaks the weights after finite losses: the checkpoint refuses them
        train(run_config("trainer.max_epochs=2", "+callbacks.poison={_target_: probes.Poison, at: 7, after: true}",
                         "~callbacks.quality"))
    kept = torch.load(last_checkpoint(tmp_path / "run"), weights_only=True)
    assert kept["epoch"] == 0 and all(torch.isfinite(t).all() for t in kept["state_dict"].values())


def test_periodic_checkpoints_keep_their_epoch_after_last_moves_on(run_config, tmp_path: Path):
    train(run_config("trainer.max_epochs=2", "callbacks.checkpoints.every_n_epochs=1", "~callbacks.quality"))
    checkpoints = tmp_path / "run" / "checkpoints"
    steps = {path.name: torch.load(path, weights_only=True)["global_step"] for path in checkpoints.glob("*.ckpt")}
    assert steps == {"epoch=001.ckpt": 8, "epoch=002.ckpt": 16, "last.ckpt": 16}


@pytest.mark.parametrize("signal", ["TERM", "INT"])
def test_a_signal_saves_and_the_resumed_run_ends_where_one_run_would(run_config, tmp_path: Path, signal: str,
                                                                     recwarn: pytest.WarningsRecorder):
    whole = tmp_path / "whole"
    train(run_config("trainer.max_epochs=2", f"paths.output_dir={whole}"))  # 8 iterations in one go

    cut = tmp_path / "cut"
    with pytest.raises(SIGTERMException):  # stopped after iteration 2, in the middle of epoch 1
        train(run_config("trainer.max_epochs=2", f"paths.output_dir={cut}",
                         f"+callbacks.interrupt={{_target_: probes.Interrupt, after: 2, signal: {signal}}}"))
    saved = torch.load(last_checkpoint(cut), weights_only=True)
    assert saved["global_step"] == 6  # three whole iterations, two optimizer steps each

    resumed = tmp_path / "resumed"
    train(run_config("trainer.max_epochs=2", f"paths.output_dir={resumed}", f"ckpt_path={last_checkpoint(cut)}"))
    assert not [w for w in recwarn if "resum" in str(w.message)]  # no false "unreliable resume" warning
    one_go = torch.load(last_checkpoint(whole), weights_only=True)["state_dict"]
    in_two = torch.load(last_checkpoint(resumed), weights_only=True)["state_dict"]
    assert all(torch.allclose(one_go[key], in_two[key], atol=1e-6) for key in one_go if key.startswith("generator."))


def test_resuming_another_architecture_names_the_mismatch(run_config, tmp_path: Path):
    train(run_config(f"paths.output_dir={tmp_path / 'first'}"))
    with pytest.raises(UsageError, match=r"was trained with model.ngf=8 \(this run: 16\), data.image_size=16 \(this run: 32\)"):
        train(run_config(f"ckpt_path={last_checkpoint(tmp_path / 'first')}", "model.ngf=16", "data.image_size=32"))


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real filesystem of 1 MiB (tmpfs) for this test; mounting needs root, as CI has."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here: {mounted.stderr.strip()} (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.slow
def test_a_full_disk_ends_the_run_in_one_line_and_the_last_good_checkpoint_resumes(run_config, tmp_path: Path,
                                                                                small_disk: Path, digits_root: Path):
    """The disk holding the checkpoints fills up during epoch 2: the run ends with one line naming
    the disk and the checkpoint still good (epoch 1's, whole: the failed write left no partial
    file), and once there is space again, that checkpoint resumes."""
    checkpoints = small_disk / "checkpoints"
    options = ["experiment=digits", "~callbacks.quality", "~callbacks.figures", "trainer.max_epochs=2",
               f"callbacks.checkpoints.dirpath={checkpoints}", "callbacks.checkpoints.every_n_epochs=1"]
    result = train_py(tmp_path, f"data.root={digits_root}", *options,
                      f"+callbacks.fill={{_target_: probes.FillDisk, path: '{small_disk / 'filler'}', epoch: 1}}")
    last = checkpoints / "last.ckpt"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith(
        f"error: the disk holding {checkpoints} (mounted at {small_disk}) is full: No space left on device while "
        f"writing checkpoints; the last good checkpoint is {last} (after iteration 3): free some space, then resume "
        f"with: python train.py ")
    assert f" data.root={digits_root} " in said and said.endswith(f" ckpt_path={last}")
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch=001.ckpt", "last.ckpt"]  # no partial
    assert torch.load(last, weights_only=True)["global_step"] == 8  # epoch 1's 4 iterations
    assert (checkpoints / "epoch=001.ckpt").stat().st_ino == last.stat().st_ino  # a hard link: no space taken
    (small_disk / "filler").unlink()
    train(run_config(*options, f"ckpt_path={last}"))
    assert torch.load(last, weights_only=True)["global_step"] == 16


def test_checkpoints_are_written_beside_their_target_and_not_in_the_system_temp_directory(
        run_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))  # a /tmp that cannot hold them
    train(run_config("~callbacks.quality", "~callbacks.figures"))
    assert torch.load(last_checkpoint(tmp_path / "run"), weights_only=True)["global_step"] == 8


class Payload:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).parent / "PWNED",))


def test_generation_never_runs_code_a_checkpoint_carries(tmp_path: Path):
    marker = Path(__file__).parent / "PWNED"
    checkpoint = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"generator.main.0.weight": torch.zeros(1)}, "hyper_parameters": {}, "x": Payload()}, checkpoint)
    said = run_script("generate.py", f"ckpt_path={checkpoint}", f"output_dir={tmp_path / 'out'}")
    assert "is not a checkpoint of this template" in said
    assert not marker.exists()
