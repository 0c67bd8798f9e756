"""Any argument of Lightning's Trainer from the command line, listed in conf/trainer/ or not, a
mistyped one refused in one line, and a finished run's "go on with" command that runs as printed
whatever limit stopped it (max_epochs, max_steps, max_time)."""

import shlex
from pathlib import Path

import pytest
import torch

from conftest import SHRINK, run_script
from train import trainer_arguments

TINY = [*SHRINK, "~callbacks.quality", "~callbacks.figures", "~callbacks.hparams", "~logger"]


def test_an_argument_conf_trainer_does_not_list_is_added_and_a_listed_one_overridden():
    argv = ["train.py", "trainer.max_steps=2", "trainer.max_epochs=3", "+trainer.foo=1", "model.lr=1e-4"]
    assert trainer_arguments(argv) == ["train.py", "++trainer.max_steps=2", "trainer.max_epochs=3", "+trainer.foo=1",
                                       "model.lr=1e-4"]


def test_a_mistyped_trainer_argument_is_one_line_naming_it_and_the_closest_argument():
    with pytest.raises(SystemExit) as said:
        trainer_arguments(["train.py", "trainer.max_stepz=2"])
    assert said.value.code == ("error: trainer.max_stepz is not an argument of pytorch_lightning.Trainer: "
                               "did you mean trainer.max_steps?")


def finished_line(said: str) -> list[str]:
    """The options of the 'go on with' command in the last line a run printed."""
    line = [line for line in said.splitlines() if "go on with: " in line][-1]
    command = shlex.split(line.split("go on with: ", 1)[1])
    assert command[:2] == ["python", "train.py"]
    return command[2:]


def global_step(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


@pytest.mark.slow  # two runs each
@pytest.mark.parametrize("limits, steps, more", [
    (["trainer.max_steps=4"], 4, "trainer.max_steps=8"),  # 2 iterations of 2 optimizer steps, in epoch 1 of 1
    (["trainer.max_epochs=1"], 8, "trainer.max_epochs=2"),  # one epoch of 4 batches
    (["trainer.max_epochs=1000", "trainer.max_time=00:00:00:01"], None, "trainer.max_time=00:00:"),  # twice the time spent
])
def test_the_go_on_with_line_runs_as_printed_and_trains_as_long_again(tmp_path: Path, digits_root: Path,
                                                                      capsys: pytest.CaptureFixture, limits: list[str],
                                                                      steps: int | None, more: str):
    first, second = tmp_path / "first", tmp_path / "second"
    assert run_script("train.py", *TINY, "experiment=digits", f"data.root={digits_root}", *limits,
                      f"hydra.run.dir={first}") is None
    options = finished_line(capsys.readouterr().out)
    assert any(option.startswith(more) for option in options)
    assert f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}" in options
    done = global_step(first)
    assert steps is None or done == steps
    assert run_script("train.py", *[o for o in options if not o.startswith("hydra.run.dir")],
                      f"hydra.run.dir={second}") is None
    if steps is not None:  # as long again; a second of training may end after any batch
        assert global_step(second) == 2 * done
    else:
        assert global_step(second) > done
