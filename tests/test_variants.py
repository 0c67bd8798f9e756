"""The GAN as options: losses, regularizers, the update schedule, normalisation, the baselines'
presets and a user's own networks; with none of them set, training is the seed's, unchanged."""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from PIL import Image
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn

from conftest import ROOT, compose_config, run_script
from dcgan.data.folder import ImageFolderDataModule
from dcgan.errors import UsageError
from dcgan.model.gan import DCGAN
from dcgan.model.losses import LOSSES
from dcgan.model.regularizers import R1, GradientPenalty
from test_gan import Snapshots, fit
from train import train

PRESETS = ["dcgan", "wgan_gp", "sngan", "lsgan", "r1"]  # conf/model/
USER_CONF = f"hydra.searchpath=[file://{ROOT / 'tests' / 'conf'}]"  # a user's own config directory


def test_the_default_path_trains_the_weights_it_always_did(run_config, tmp_path: Path):
    """tests/seed_reference.json: sums of every G and D tensor after 8 iterations (2 epochs of 4)
    of this config, written by the template before losses, regularizers and schedules were options."""
    train(run_config("trainer.max_epochs=2", "~callbacks.quality", "~callbacks.figures"))
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    reference = json.loads((ROOT / "tests" / "seed_reference.json").read_text())
    assert reference.keys() == {k for k, v in state.items() if k.startswith(("generator.", "discriminator."))
                                and v.is_floating_point()}
    for key, (total, magnitude) in reference.items():
        tensor = state[key].double()
        assert float(tensor.sum()) == pytest.approx(total, abs=1e-5 * max(1.0, magnitude)), key
        assert float(tensor.abs().sum()) == pytest.approx(magnitude, rel=1e-5, abs=1e-6), key


LOGITS = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0, 1.5])  # real, fake


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(("name", "d_loss", "g_loss"), [
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f); G: -log sigmoid(f) = softplus(-f)
    ("ns", sum(softplus(-r) for r in (2, -1, 0.5)) / 3 + sum(softplus(f) for f in (-3, 0, 1.5)) / 3,
     sum(softplus(-f) for f in (-3, 0, 1.5)) / 3),
    ("hinge", (0 + 2 + 0.5) / 3 + (0 + 1 + 2.5) / 3, -(-3 + 0 + 1.5) / 3),
    ("wasserstein", (-3 + 0 + 1.5) / 3 - (2 - 1 + 0.5) / 3, -(-3 + 0 + 1.5) / 3),
    ("least_squares", 0.5 * (1 + 4 + 0.25) / 3 + 0.5 * (9 + 0 + 2.25) / 3, 0.5 * (16 + 1 + 0.25) / 3),
])
def test_each_loss_against_hand_computed_values(name: str, d_loss: float, g_loss: float):
    loss = LOSSES[name]()
    real, fake = LOGITS
    assert float(loss.discriminator(real, fake)) == pytest.approx(d_loss, rel=1e-6)
    assert float(loss.generator(fake)) == pytest.approx(g_loss, rel=1e-6)
    statistics = loss.statistics(real, fake, fake)
    assert float(statistics["d_real"]) == pytest.approx(0.5) and float(statistics["d_fake"]) == pytest.approx(-0.5)
    if name == "ns":  # the tutorial's D(x), D(G(z)) as probabilities
        assert float(statistics["d_x"]) == pytest.approx(float(torch.sigmoid(real).mean()))


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


def tiny(**options) -> DCGAN:
    return DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, **options)


def test_n_critic_takes_that_many_d_steps_each_on_its_own_real_batch_per_g_step():
    model, snapshots, reals = tiny(n_critic=3), Snapshots(), []
    model.discriminator.register_forward_pre_hook(lambda module, args: reals.append(args[0].detach().clone()))
    fit(model, snapshots, batches=2, batch_size=24)  # each step takes 3 real batches of 8
    opt_g, opt_d = (o.optimizer if hasattr(o, "optimizer") else o for o in model.trainer.optimizers)
    assert [step[0] for step in snapshots.taken] == [opt_d, opt_d, opt_d, opt_g] * 2
    assert model.trainer.global_step == 8 and model.iteration == 2  # global_step counts all 4 steps
    real_batches = reals[0:6:2]  # D(x), D(G(z)) per D update, then D(G(z)) for G: the first iteration's reals
    assert all(batch.shape[0] == 8 for batch in real_batches)
    assert not torch.equal(real_batches[0], real_batches[1]) and not torch.equal(real_batches[1], real_batches[2])


class DiscriminatorBatches(pl.Callback):
    """Records the batch size of every image batch D is given in training (tests/ only)."""

    sizes: list[int] = []

    def on_train_start(self, trainer, pl_module):
        DiscriminatorBatches.sizes = []
        pl_module.discriminator.register_forward_pre_hook(lambda module, args: self.sizes.append(len(args[0])))


def test_with_n_critic_and_no_drop_last_every_d_update_takes_a_whole_batch(run_config, tmp_path: Path):
    """80 images in steps of 5 D batches of 7: two whole steps an epoch (70 images), and the 10
    left over are not cut into five D batches of 2 (nor the digits' 12 into an IndexError)."""
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for i in range(80):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.png")
    with pytest.warns(UserWarning, match="model.n_critic=5: every D update takes a whole batch of 7, so the last 10"):
        metrics = train(run_config("experiment=cifar32", f"data.root={tmp_path / 'images'}", "model=wgan_gp",
                                   "data.batch_size=7", "data.drop_last=false", "trainer.limit_train_batches=null",
                                   "trainer.max_epochs=2", "~callbacks.quality", "~callbacks.figures",
                                   "+callbacks.batches={_target_: test_variants.DiscriminatorBatches}"))
    assert math.isfinite(metrics["train/gp"])
    # per iteration: 5 D updates of a real and a fake batch and a penalty, then D(G(z)) for G
    assert DiscriminatorBatches.sizes == [7] * (5 * 3 + 1) * 2 * 2  # 2 iterations an epoch, 2 epochs


def test_without_n_critic_a_short_last_batch_is_kept_as_the_seed_keeps_it(tmp_path: Path):
    for i in range(40):
        Image.fromarray(np.full((16, 16), i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=7, num_workers=0, drop_last=False)
    dm.setup("fit")
    assert [len(batch) for batch in dm.train_dataloader()] == [7] * 5 + [5]
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=4, batches_per_step=3, num_workers=0,
                               drop_last=False)
    with pytest.warns(UserWarning, match="the last 4 images"):
        dm.setup("fit")
    assert [len(batch) for batch in dm.train_dataloader()] == [12] * 3


def test_two_time_scale_rates_and_beta2_reach_their_optimizers():
    model = tiny(lr=3e-4, lr_g=1e-4, lr_d=4e-4, beta1=0.0, beta2=0.9)
    opt_g, opt_d = model.configure_optimizers()
    assert {id(p) for p in opt_g.param_groups[0]["params"]} == {id(p) for p in model.generator.parameters()}
    assert opt_g.defaults["lr"] == 1e-4 and opt_d.defaults["lr"] == 4e-4
    assert opt_g.defaults["betas"] == opt_d.defaults["betas"] == (0.0, 0.9)
    assert tiny(lr=3e-4, lr_d=4e-4).configure_optimizers()[0].defaults["lr"] == 3e-4  # unset: lr


def largest_singular_values(net: nn.Module) -> list[float]:
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    return [float(torch.linalg.matrix_norm((m.weight.detach().transpose(0, 1) if isinstance(m, nn.ConvTranspose2d)
                                            else m.weight.detach()).flatten(1), ord=2)) for m in layers]


def test_spectral_norm_keeps_each_layers_largest_singular_value_near_one():
    model = tiny(spectral_norm="both")
    fit(model, pl.Callback(), batches=3)
    for net in (model.generator, model.discriminator):
        for _ in range(20):  # one power iteration per training forward pass
            net(torch.randn(8, 8, 1, 1) if net is model.generator else torch.rand(8, 1, 16, 16) * 2 - 1)
        assert all(abs(sigma - 1) < 0.05 for sigma in largest_singular_values(net))


def test_grids_leave_a_spectrally_normalised_generator_as_it_was():
    model = tiny(spectral_norm="g")
    fit(model, pl.Callback(), batches=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        first, second = model.grid()[0], model.grid()[0]
    assert torch.equal(first, second)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("norm", ["batch", "none", "layer", "instance"])
def test_discriminator_normalisations(norm: str):
    kinds = {type(m).__name__ for m in tiny(d_norm=norm).discriminator.modules()}
    expected = {"batch": "BatchNorm2d", "layer": "GroupNorm", "instance": "InstanceNorm2d"}.get(norm)
    assert {"BatchNorm2d", "GroupNorm", "InstanceNorm2d"} & kinds == ({expected} if expected else set())


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_with_a_data_preset_and_trains_two_batches(preset: str, run_config, tmp_path: Path):
    metrics = train(run_config(f"model={preset}", "trainer.limit_train_batches=2", "~callbacks.figures"))
    assert all(math.isfinite(metrics[k]) for k in ("train/loss_d", "train/loss_g", "val/fid"))
    logged = {"wgan_gp": "train/gp", "r1": "train/r1"}.get(preset)
    assert logged is None or logged in metrics
    assert ("train/d_x" in metrics) == (preset in ("dcgan", "r1"))  # probabilities: the non-saturating loss only


def test_a_preset_keeps_its_values_under_a_data_preset():
    cfg = compose_config(["model=wgan_gp", "experiment=celeba64", "data.root=/data/celeba"], shrink=False)
    model = instantiate(cfg.model)
    assert (model.hparams.loss, model.hparams.n_critic, model.hparams.gp_lambda) == ("wasserstein", 5, 10.0)
    assert model.configure_optimizers()[1].defaults["betas"] == (0.5, 0.9)
    assert (model.hparams.image_size, model.hparams.channels) == (64, 3)  # the data preset's images


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


@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU: 16-mixed as users run it, and cuDNN's float16 kernels"))])
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


def test_a_users_own_networks_train_and_generate_from_their_checkpoint(run_config, tmp_path: Path, monkeypatch):
    train(run_config(USER_CONF, "model/generator=mlp", "model/discriminator=mlp", "~callbacks.figures"))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    hparams = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
    assert hparams["generator"] == {"_target_": "user_networks.MLPGenerator", "nz": 16, "channels": 1,
                                    "image_size": 16, "hidden": 64}
    monkeypatch.chdir(tmp_path)  # python generate.py, with tests/ (the user's networks) importable
    assert run_script("generate.py", f"ckpt_path={checkpoint}", "num_images=4", f"output_dir={tmp_path / 'out'}") is None
    assert len(list((tmp_path / "out").glob("0*.png"))) == 4

    with pytest.raises(UsageError, match="model.generator.hidden=64 \\(this run: 32\\)"):  # resume names the change
        train(run_config(USER_CONF, "model/generator=mlp", "model/discriminator=mlp", "model.generator.hidden=32",
                         f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path / 'again'}"))


@pytest.mark.parametrize(("override", "message"), [
    ("+model.generator.out_scale=100", "model.generator: G\\(z\\) must be images in \\[-1, 1\\] \\(end it with Tanh\\)"),
    ("model.generator.image_size=32", "model.generator: G\\(z\\) for z of shape \\(2, 16, 1, 1\\) must be images of "
                                      "shape \\(2, 1, 16, 16\\), got \\(2, 1, 32, 32\\)"),
    ("+model.discriminator.flat=false", "model.discriminator: D\\(x\\) .* must be one logit per image, of shape "
                                        "\\(2,\\), got \\(2, 1\\)"),
])
def test_networks_that_break_the_contract_are_one_line_before_training(run_config, tmp_path: Path, override, message):
    with pytest.raises(UsageError, match=message):
        train(run_config(USER_CONF, "model/generator=mlp", "model/discriminator=mlp", override))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("model.loss=wgan", "model.loss='wgan' is not one of ns, hinge, wasserstein, least_squares"),
    ("model.n_critic=0", "must be at least 1 \\(it follows model.n_critic\\), got 0"),
    ("model.r1_gamma=-1", "model.r1_gamma must be 0 \\(off\\) or positive"),
    ("model.lr_d=0", "model.lr_d must be positive"),
    ("model.beta2=1.0", "model.beta2 must be in \\[0, 1\\)"),
    ("model.spectral_norm=all", "model.spectral_norm='all' has the wrong type: expected 'none' or 'd' or 'g' or 'both'"),
    ("model.d_norm=group", "model.d_norm='group' has the wrong type"),
])
def test_bad_gan_options_stop_before_any_work(run_config, tmp_path: Path, override: str, message: str):
    with pytest.raises(UsageError, match=message):
        train(run_config(override))
    assert not (tmp_path / "run").exists()
