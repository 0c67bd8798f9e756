"""train.py end to end on its real config, shrunk: TensorBoard content, checkpoints, resume, errors."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import compose_config, run_script
from dcgan.errors import UsageError
from train import train

SCALARS = {"train/loss_d", "train/loss_g", "train/d_x", "train/d_g_z1", "train/d_g_z2"}


def events(run: Path) -> EventAccumulator:
    (event_file,) = (run / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(event_file), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_a_run_writes_grids_scalars_config_and_checkpoints(run_config, tmp_path: Path):
    metrics = train(run_config("callbacks.checkpoints.every_n_epochs=1"))
    run = tmp_path / "run"
    tb = events(run)
    assert {"samples/fixed_noise", "samples/real"} <= set(tb.Tags()["images"])
    assert SCALARS <= set(tb.Tags()["scalars"])
    assert SCALARS <= set(metrics)
    # x-axis = iteration index (the seed's iters): 4 batches log scalars at 0..3; grids after the
    # first iteration, every 2 (iterations 1 and 3, with the scalars) and at the epoch end (3).
    assert [s.step for s in tb.Scalars("train/loss_d")] == [0, 1, 2, 3]
    assert [i.step for i in tb.Images("samples/fixed_noise")] == [0, 1, 3]
    assert len(tb.Images("samples/real")) == 1
    grid = tb.Images("samples/fixed_noise")[-1]
    assert (grid.width, grid.height) == (8 * 18 + 2, 8 * 18 + 2)  # 8x8 images of 16px, 2px padding
    assert (run / "config.yaml").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "epoch=001.ckpt", "last.ckpt"]


def test_resume_continues_weights_optimizers_noise_and_epoch(run_config, tmp_path: Path):
    train(run_config("trainer.max_epochs=1"))
    first = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert first["epoch"] == 0 and first["global_step"] == 8  # 4 iterations, two optimizer steps each

    resumed = run_config(f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2",
                         f"paths.output_dir={tmp_path / 'resumed'}")
    train(resumed)
    second = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert second["epoch"] == 1 and second["global_step"] == 16
    assert torch.equal(first["state_dict"]["fixed_noise"], second["state_dict"]["fixed_noise"])
    adam_steps = [s["step"] for s in second["optimizer_states"][0]["state"].values()]
    assert all(int(step) == 8 for step in adam_steps)  # Adam's counters went on from 4
    assert [s.step for s in events(tmp_path / "resumed").Scalars("train/loss_d")] == [4, 5, 6, 7]


def test_the_seeds_setup_is_a_preset_that_builds_the_tutorials_networks_and_needs_only_data_root(tmp_path: Path):
    with pytest.raises(UsageError, match="data.root is required"):
        train(compose_config(["experiment=celeba64", f"paths.output_dir={tmp_path}"], shrink=False))
    model = instantiate(compose_config(["experiment=celeba64", "data.root=/data/celeba"], shrink=False).model)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert (count(model.generator), count(model.discriminator)) == (3_576_704, 2_765_568)  # 64x64 RGB, the tutorial's
    for optimizer in model.configure_optimizers():
        assert optimizer.defaults["lr"] == 2e-4 and optimizer.defaults["betas"] == (0.5, 0.999)


def test_with_no_options_the_builtin_digits_are_written_once_and_trained_on(tmp_path: Path):
    metrics = train(compose_config([f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}"]))
    digits = tmp_path / "data" / "digits"
    assert (digits / ".dcgan-digits").exists() and len(list(digits.rglob("*.png"))) == 1797
    assert metrics["val/fid"] > 0  # in the digit classifier's features, trained offline beside them


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+model.ngff=32", "model.ngff is not an option of dcgan.model.gan.DCGAN"),
        ("model.nz=abc", "model.nz='abc' has the wrong type: expected int"),
        ("model.lr=fast", "model.lr='fast' has the wrong type: expected float"),
        ("trainer.max_epochs=lots", "trainer.max_epochs='lots' has the wrong type"),
        ("seed=abc", "seed='abc' has the wrong type: expected int"),
        ("data.image_size=48", "model.image_size must be a power of two in \\[16, 256\\] for the DCGAN networks, "
                               "got 48"),
    ],
)
def test_config_mistakes_stop_before_any_work(run_config, tmp_path: Path, override: str, message: str):
    with pytest.raises(UsageError, match=message):
        train(run_config(override))
    assert not (tmp_path / "run").exists()  # nothing was started


def test_command_line_mistake_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    # python train.py exits with this line alone (printed to stderr, status 1): no traceback
    assert run_script("train.py", "model.nz=abc", f"hydra.run.dir={tmp_path}") == \
        "error: model.nz='abc' has the wrong type: expected int"
