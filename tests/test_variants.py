"""The GAN as options: the update schedule, the two rates, normalisation, the baselines' presets under a
data preset, and the options checked; with none of them set, training is the seed's, unchanged. Losses,
regularizers and a user's own networks: tests/test_losses.py, test_regularizers.py, test_user_networks.py."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from PIL import Image
from torch import nn

from conftest import ROOT, compose_config
from dcgan.data.folder import ImageFolderDataModule
from dcgan.errors import UsageError
from dcgan.model.gan import DCGAN
from test_gan import Snapshots, fit
from train import train

PRESETS = ["dcgan", "wgan_gp", "sngan", "lsgan", "r1"]  # conf/model/


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
