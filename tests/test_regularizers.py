"""R1 and the gradient penalty: closed forms, the r1 preset, mixed precision, resumes, DDP, BatchNorm in D."""

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn

from conftest import compose_config
from dcgan.model.regularizers import R1, GradientPenalty
from train import train


class Quadratic(nn.Module):
    """D(x) = sum(w * x^2) / 2: its input gradient w * x differs from image to image, so a penalty
    taken at the wrong images (fakes for R1, one fixed point for WGAN-GP) comes out differently."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.w * x.square()).flatten(1).sum(1) / 2


@pytest.mark.parametrize("scale", [None, torch.tensor(1024.0)])  # 16-mixed hands the grad scaler's scale
def test_r1_and_the_gradient_penalty_against_a_closed_form(scale):
    w = torch.tensor([[[0.5, 1.5], [-1.0, 2.0]]])  # (C, H, W) = (1, 2, 2)
    real, fake = torch.rand(4, 1, 2, 2, generator=torch.Generator().manual_seed(1)), torch.rand(4, 1, 2, 2) - 1
    d = Quadratic(w.clone())
    # R1 = gamma / 2 * E|w * x|^2 over the real images; lazy: every 4th iteration, 4 times the weight
    r1 = (w * real).square().flatten(1).sum(1)  # (B,)
    term, penalty = R1(gamma=10.0, interval=4)(d, real, fake, iteration=8, rng=torch.Generator(), scale=scale)
    assert float(penalty) == pytest.approx(float(r1.mean()), rel=1e-5)
    assert float(term.detach()) == pytest.approx(10 / 2 * 4 * float(r1.mean()), rel=1e-5)
    assert R1(gamma=10.0, interval=4)(d, real, fake, iteration=9, rng=torch.Generator(), scale=scale) is None
    term.backward()  # d/dw 20 E sum(w^2 x^2) = 20 E 2 w x^2
    assert torch.allclose(d.w.grad, 20 * (2 * w * real.square()).mean(0), rtol=1e-5)

    # GP = lambda E(|w * x^| - 1)^2 at x^ = fake + t (real - fake), t ~ U(0, 1) from the run's stream
    t = torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    between = fake + t * (real - fake)
    norms = (w * between).flatten(1).norm(dim=1)  # (B,)
    d = Quadratic(w.clone())
    term, penalty = GradientPenalty(weight=10.0)(d, real, fake, iteration=9, rng=torch.Generator().manual_seed(0),
                                                 scale=scale)
    assert float(penalty) == pytest.approx(float((norms - 1).square().mean()), rel=1e-5)
    assert float(term.detach()) == pytest.approx(10 * float((norms - 1).square().mean()), rel=1e-5)
    term.backward()  # d/dw 10 E(n - 1)^2 = 10 E 2 (n - 1) w x^2 / n
    expected = (10 * 2 * (norms - 1) / norms)[:, None, None, None] * w * between.square()
    assert torch.allclose(d.w.grad, expected.mean(0), rtol=1e-4)


def test_the_r1_preset_is_its_sources_reg_param_10_times_the_squared_gradient_norm():
    """GAN_stability's train.py: reg = reg_param * compute_grad2(d_real, x_real).mean(), reg_param
    10 in its configs, where compute_grad2 is each image's squared input-gradient norm."""
    cfg = compose_config(["model=r1"], shrink=False)
    real = torch.rand(4, 1, 2, 2)
    d = Quadratic(torch.tensor([[[0.5, 1.5], [-1.0, 2.0]]]))
    term, penalty = R1(cfg.model.r1_gamma, cfg.model.r1_interval)(d, real, real, iteration=0, rng=torch.Generator())
    assert float(term.detach()) == pytest.approx(10 * float(penalty), rel=1e-6)


@pytest.mark.slow
def test_regularizers_resume_exactly_and_keep_ddp_ranks_in_step(run_config, tmp_path: Path, digits_root: Path):
    options = ["model.r1_gamma=1.0", "model.r1_interval=2", "model.gp_lambda=1.0", "model.n_critic=2", "model.spectral_norm=d",
               "trainer.max_epochs=2", "~callbacks.quality", "~callbacks.figures", "data.batch_size=8"]
    train(run_config(*options, f"paths.output_dir={tmp_path / 'whole'}"))
    with pytest.raises(SIGTERMException):
        train(run_config(*options, f"paths.output_dir={tmp_path / 'cut'}",
                         "+callbacks.interrupt={_target_: probes.Interrupt, after: 5, signal: TERM}"))
    train(run_config(*options, f"paths.output_dir={tmp_path / 'resumed'}",
                     f"ckpt_path={tmp_path / 'cut' / 'checkpoints' / 'last.ckpt'}"))
    whole, resumed = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                      for name in ("whole", "resumed"))
    assert all(torch.allclose(whole[k], resumed[k], atol=1e-6) for k in whole if k.startswith(("generator", "discriminator")))

    from test_parallel import probe, train_py
    train_py(tmp_path, digits_root, "trainer.devices=2", *options, probe(tmp_path / "probe"))
    ranks = [json.loads((tmp_path / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # the penalties' gradients were all-reduced too


@pytest.mark.parametrize(("options", "warned"), [
    (["model.gp_lambda=10"], "model.gp_lambda=10 with BatchNorm in D"),
    (["model.r1_gamma=1", "model.gp_lambda=2"], "model.r1_gamma=1 and model.gp_lambda=2 with BatchNorm in D"),
    (["model=wgan_gp"], None), (["model=r1"], None), (["model.gp_lambda=10", "model.d_norm=none"], None),
])
def test_a_penalty_on_a_batchnorm_discriminator_is_one_warning_and_the_presets_have_none(run_config, options, warned):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(run_config(*options, "trainer.limit_train_batches=1", "~callbacks.quality", "~callbacks.figures"))
    said = [str(w.message) for w in caught if "BatchNorm in D" in str(w.message)]
    assert len(said) == (warned is not None)
    assert warned is None or (said[0].startswith(warned) and said[0].endswith("set model.d_norm=layer or model.d_norm=none"))


def test_bf16_mixed_trains_the_penalties_on_cpu(run_config):
    metrics = train(run_config("trainer.precision=bf16-mixed", "model.r1_gamma=1.0", "model.gp_lambda=1.0",
                               "trainer.limit_train_batches=2", "~callbacks.quality", "~callbacks.figures"))
    assert all(math.isfinite(metrics[k]) for k in ("train/loss_d", "train/r1", "train/gp"))


# Lightning turns 16-mixed into bf16-mixed on a CPU; its float16 plugin, grad scaler included, given explicitly
FLOAT16_ON_CPU = ["trainer.precision=null", "+trainer.plugins=[{_target_: pytorch_lightning.plugins.precision.MixedPrecision, "
                  "precision: 16-mixed, device: cpu}]"]


# On the GPU: 16-mixed as users run it, with cuDNN's float16 kernels.
@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_penalties_under_16_mixed_are_the_full_precision_ones(run_config, tmp_path: Path, device: str):
    """The grad scaler scales the loss once: the penalties' input gradients, taken of the scaled D
    outputs, are divided back (forgetting it would make the penalties scale^2 / B^2 times larger)."""
    common = [f"trainer.accelerator={device}", "model.r1_gamma=1.0", "model.gp_lambda=1.0", "trainer.limit_train_batches=2",
              "~callbacks.quality", "~callbacks.figures"]
    if device == "cpu":  # PyTorch's float16 BatchNorm has no working double backward on CPU (NaN): D without it
        common.append("model.d_norm=layer")
    float16 = FLOAT16_ON_CPU if device == "cpu" else ["trainer.precision=16-mixed"]
    logged = {name: train(run_config(*common, *extra, f"paths.output_dir={tmp_path / name}"))
              for name, extra in (("float32", ["trainer.precision=32-true"]), ("float16", float16))}
    for key in ("train/r1", "train/gp"):
        assert logged["float16"][key] == pytest.approx(logged["float32"][key], rel=0.1)
