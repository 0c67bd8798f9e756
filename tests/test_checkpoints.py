"""Checkpoints know what they were trained on: the class names and the update schedule, checked on
resume and named by generate.py; checkpoints of earlier versions still generate (and resume where
their tensors fit)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, generate_config
from dcgan.errors import UsageError
from generate import generate
from train import train

FIXTURES = ROOT / "tests" / "fixtures"
TINY = ["~callbacks.quality", "~callbacks.figures", "trainer.limit_train_batches=2"]


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    """A labelled folder: 12 images each in cats/ and dogs/."""
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "pets" / name / f"{i}.png")
    return tmp_path / "pets"


def on_pets(run_config, pets: Path, *overrides: str):
    return run_config("experiment=cifar32", f"data.root={pets}", "data.labels=true", "data.batch_size=4", *TINY,
                      *overrides)


def test_the_class_names_are_saved_and_a_resume_on_renamed_folders_names_the_change(run_config, pets: Path,
                                                                                    tmp_path: Path):
    train(on_pets(run_config, pets))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["hyper_parameters"]["class_names"] == ["cats", "dogs"]
    (pets / "dogs").rename(pets / "birds")  # the same count of classes, sorted the other way round
    with pytest.raises(UsageError, match=f"ckpt_path={last} was trained on other classes: label 0 was 'cats', is now "
                                         "'birds'; label 1 was 'dogs', is now 'cats' \\(the class folders of data.root"):
        train(on_pets(run_config, pets, f"ckpt_path={last}", "trainer.max_epochs=2",
                      f"paths.output_dir={tmp_path / 'again'}"))
    assert not (tmp_path / "again").exists()


def test_generate_takes_a_class_by_label_or_by_name_and_prints_what_each_is(run_config, pets: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture):
    train(on_pets(run_config, pets))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    by_name, by_label = (generate(generate_config(f"ckpt_path={last}", "num_images=4", f"class={choice}",
                                                  f"output_dir={tmp_path / str(choice)}")) for choice in ("dogs", 1))
    assert [path.read_bytes() for path in by_name] == [path.read_bytes() for path in by_label]
    assert "classes of this checkpoint: 0=cats, 1=dogs; generating dogs" in capsys.readouterr().out
    with pytest.raises(UsageError, match="class=wolves: wolves is not one of this checkpoint's classes, 0=cats, 1=dogs"):
        generate(generate_config(f"ckpt_path={last}", "class=wolves", f"output_dir={tmp_path / 'wolves'}"))


def test_resuming_with_another_n_critic_is_refused(run_config, tmp_path: Path):
    train(run_config(*TINY))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(UsageError, match=f"ckpt_path={last} was trained with model.n_critic=1 \\(this run: 2\\)"):
        train(run_config(*TINY, "model.n_critic=2", f"ckpt_path={last}", f"paths.output_dir={tmp_path / 'again'}"))


def test_a_checkpoint_written_before_the_package_was_split_generates_and_resumes(run_config, tmp_path: Path,
                                                                                 capsys: pytest.CaptureFixture):
    """tests/fixtures/before_layout.ckpt: 2 iterations on the digits' classes (nz 4, ngf = ndf = 2,
    EMA 0.9), written when src/dcgan/ was one flat folder; the .npy beside it: what its generate.py
    made of it (seed 3, classes 1 and 7)."""
    old = FIXTURES / "before_layout.ckpt"
    files = generate(generate_config(f"ckpt_path={old}", "num_images=6", "seed=3", "class=[1,7]",
                                     f"output_dir={tmp_path / 'generated'}"))
    made = np.stack([np.asarray(Image.open(path)) for path in files]).astype(int)
    assert np.abs(made - np.load(FIXTURES / "before_layout_seed3_class1_7.npy")).max() <= 1  # one grey level
    train(run_config("data.labels=true", "model.nz=4", "model.ngf=2", "model.ndf=2", "model.ema_decay=0.9",
                     "data.batch_size=8", *TINY, "trainer.max_epochs=2", f"ckpt_path={old}"))
    resumed = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert (resumed["epoch"], resumed["global_step"]) == (1, 8)  # its 2 iterations, then 2 more
    assert resumed["hyper_parameters"]["generator"]["_target_"] == "dcgan.model.networks.dcgan.Generator"
    assert resumed["hyper_parameters"]["class_names"] == [str(digit) for digit in range(10)]  # recorded from now on
    printed = capsys.readouterr().out
    assert "classes of this checkpoint: 0=0, 1=1, 2=2" in printed and "(its class names were not recorded" in printed


def test_a_checkpoint_from_before_spectral_norm_covered_the_class_embedding_generates_but_is_not_resumed(
        run_config, tmp_path: Path):
    train(run_config(*TINY, "data.labels=true", "model.spectral_norm=d"))
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    embed = "discriminator.embed."  # as it was: a plain weight, with no power iteration's vectors
    state["state_dict"] = {key: value for key, value in state["state_dict"].items() if not key.startswith(embed)}
    state["state_dict"][f"{embed}weight"] = torch.randn(10, 64)
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    assert len(generate(generate_config(f"ckpt_path={old}", "num_images=3", f"output_dir={tmp_path / 'out'}"))) == 3
    with pytest.raises(UsageError, match=f"ckpt_path={old} holds other tensors than this model \\(\\+{embed}weight, "
                                         f"-{embed}parametrizations.weight.0._u, .*cannot be resumed"):
        train(run_config(*TINY, "data.labels=true", "model.spectral_norm=d", f"ckpt_path={old}",
                         f"paths.output_dir={tmp_path / 'again'}"))


def test_only_the_newest_periodic_checkpoints_are_kept_and_last_and_best_never_pruned(run_config, tmp_path: Path):
    """keep_periodic=2 over 4 epochs: epochs 1 and 2 pruned; best.ckpt (a hard link to the last.ckpt of
    epoch 1, as epoch=001.ckpt was) keeps its content."""
    train(run_config("~callbacks.quality", "~callbacks.figures", "trainer.max_epochs=4", "trainer.limit_train_batches=1",
                     "callbacks.checkpoints.every_n_epochs=1", "callbacks.checkpoints.keep_periodic=2",
                     "callbacks.checkpoints.monitor=train/loss_d"))
    checkpoints = tmp_path / "run" / "checkpoints"
    steps = {path.name: torch.load(path, weights_only=True)["global_step"] for path in checkpoints.iterdir()}
    assert {name: step for name, step in steps.items() if name != "best.ckpt"} == \
        {"epoch=003.ckpt": 6, "epoch=004.ckpt": 8, "last.ckpt": 8}
    assert steps.get("best.ckpt") in (2, 4, 6, 8)  # whichever epoch's loss_d was lowest, whole
