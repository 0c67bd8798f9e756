"""The presets train as their papers' code does: SN-GAN's linear decay of both rates to 0 (Mimicry's
torch_mimicry/training/scheduler.py), G's update on latents of its own, each preset's numbers as
its conf file cites them; and with neither option set, the seed's step is unchanged."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.utilities.exceptions import SIGTERMException
from test_resnet import MIMICRY, count
from torch.utils.data import DataLoader

from conftest import compose_config
from dcgan.errors import UsageError
from dcgan.model.checkpoints import check_resumable
from dcgan.model.gan import DCGAN
from dcgan.model.networks.resnet import Discriminator
from train import train

LR = 2e-4


def tiny(**options) -> DCGAN:
    return DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, lr=LR, **options)


class Rates(pl.Callback):
    """Each optimizer step, in order: which network ("g" or "d") and its rate at that step."""

    def __init__(self):
        self.steps: list[tuple[str, float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.steps.append(("gd"[trainer.optimizers.index(optimizer)], optimizer.param_groups[0]["lr"]))


class GeneratorCalls(pl.Callback):
    """Per call of G in training: its latents and whether autograd recorded it."""

    def __init__(self):
        self.calls: list[tuple[torch.Tensor, bool]] = []

    def on_train_start(self, trainer, pl_module):
        pl_module.generator.register_forward_hook(
            lambda module, inputs, output: self.calls.append((inputs[0].detach().clone(), torch.is_grad_enabled())))


def fit(model: DCGAN, callback: pl.Callback, iterations: int = 4, batch_size: int = 8, **trainer_options) -> pl.Trainer:
    """`iterations` training steps (one epoch), each of n_critic batches of batch_size images."""
    step = batch_size * model.hparams.n_critic
    images = torch.rand(iterations * step, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    trainer = pl.Trainer(accelerator="cpu", logger=False, callbacks=[callback], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, **{"max_epochs": 1, **trainer_options})
    trainer.fit(model, DataLoader(images, batch_size=step))
    return trainer


def mimicry_linear_decay(lr: float, global_step: int, num_steps: int) -> float:
    """Mimicry's LRScheduler.linear_decay(lr_value_range=(lr, 0), lr_step_range=(0, num_steps)) as
    Trainer.train calls it, after each iteration with the iterations done: the rate of the next."""
    return lr if global_step <= 0 else 0.0 if global_step >= num_steps else lr + global_step / num_steps * (0.0 - lr)


@pytest.mark.parametrize("n_critic", [1, 3])
def test_linear_decay_steps_once_per_g_update_and_reaches_zero_after_the_last(n_critic: int):
    rates = Rates()
    trainer = fit(tiny(lr_decay="linear", n_critic=n_critic), rates, iterations=4)
    expected = [mimicry_linear_decay(LR, done, 4) for done in range(4)]  # 2e-4, 1.5e-4, 1e-4, 5e-5
    per_iteration = [rates.steps[i:i + n_critic + 1] for i in range(0, len(rates.steps), n_critic + 1)]
    assert [[name for name, _ in steps] for steps in per_iteration] == [["d"] * n_critic + ["g"]] * 4
    for steps, rate in zip(per_iteration, expected):  # D's updates of an iteration run at G's rate
        assert [lr for _, lr in steps] == pytest.approx([rate] * (n_critic + 1), rel=1e-12)
    assert [optimizer.param_groups[0]["lr"] for optimizer in trainer.optimizers] == [0.0, 0.0]


def test_the_decays_length_is_the_runs_whichever_of_max_steps_and_max_epochs_ends_it_first():
    # max_steps counts optimizer steps: 7 of them end the run in the 3rd iteration of 2 D + 1 G steps
    by_steps = fit(tiny(lr_decay="linear", n_critic=2), Rates(), iterations=4, max_steps=7, max_epochs=-1)
    assert by_steps.lr_scheduler_configs[0].scheduler.iterations == 3
    assert by_steps.optimizers[0].param_groups[0]["lr"] == 0.0
    rates = Rates()  # 2 epochs of 3 batches (of 4 in the loader), the first bound here
    by_epochs = fit(tiny(lr_decay="linear"), rates, iterations=4, max_epochs=2, limit_train_batches=3, max_steps=100)
    assert [lr for name, lr in rates.steps if name == "g"] == pytest.approx([LR * (1 - k / 6) for k in range(6)])
    assert by_epochs.optimizers[1].param_groups[0]["lr"] == 0.0


def test_without_lr_decay_there_is_no_scheduler_and_the_rates_stay():
    rates = Rates()
    trainer = fit(tiny(), rates, iterations=3)
    assert trainer.lr_scheduler_configs == [] and {lr for _, lr in rates.steps} == {LR}


def test_lr_decay_in_a_run_without_an_end_is_a_one_line_error():
    with pytest.raises(UsageError, match="model.lr_decay=linear decays the rates to 0 at the run's last step, but this "
                                         "run sets no end: set trainer.max_steps"):
        fit(tiny(lr_decay="linear"), Rates(), max_epochs=-1)


def test_a_time_limit_beside_the_decay_is_warned_about():
    with pytest.warns(UserWarning, match="model.lr_decay=linear decays to 0 over 4 G updates .* a time limit may stop"):
        fit(tiny(lr_decay="linear"), Rates(), max_time="00:00:10:00")


def test_resuming_with_another_lr_decay_is_refused_before_any_work(tmp_path: Path):
    decayed = tiny(lr_decay="linear")
    torch.save({"hyper_parameters": dict(decayed.hparams), "state_dict": decayed.state_dict()}, tmp_path / "last.ckpt")
    with pytest.raises(UsageError, match="was trained with model.lr_decay=linear \\(this run: none\\): pass the same"):
        check_resumable(tmp_path / "last.ckpt", tiny())
    check_resumable(tmp_path / "last.ckpt", tiny(lr_decay="linear"))


@pytest.mark.parametrize(("options", "message"), [
    ({"lr_decay": "cosine"}, "lr_decay='cosine' is not one of none, linear"),
    ({"g_fresh_latents": "yes"}, "g_fresh_latents='yes' must be true or false"),
])
def test_a_wrong_value_of_the_new_options_is_a_one_line_error(options: dict, message: str):
    with pytest.raises(UsageError, match=message):
        tiny(**options)


@pytest.mark.parametrize("n_critic", [1, 3])
def test_with_fresh_latents_g_updates_on_latents_of_its_own_drawn_after_ds(n_critic: int):
    calls = GeneratorCalls()
    fit(tiny(g_fresh_latents=True, n_critic=n_critic), calls, iterations=2)
    assert len(calls.calls) == 2 * (n_critic + 1)  # G runs once more per iteration: its own batch
    for i in range(0, len(calls.calls), n_critic + 1):
        *d_calls, (g_latents, recorded) = calls.calls[i:i + n_critic + 1]
        assert recorded and not any(grad for _, grad in d_calls)  # G's gradient comes from its own batch alone
        assert g_latents.shape == d_calls[-1][0].shape  # as many as one D update's
        assert not any(torch.equal(g_latents, latents) for latents, _ in d_calls)


@pytest.mark.parametrize("n_critic", [1, 3])
def test_without_fresh_latents_g_updates_on_ds_last_fake_batch_as_the_seed(n_critic: int):
    calls = GeneratorCalls()
    fit(tiny(n_critic=n_critic), calls, iterations=2)
    assert [grad for _, grad in calls.calls] == ([False] * (n_critic - 1) + [True]) * 2  # G runs once per D update


def test_fresh_latents_come_from_the_runs_latent_stream_not_the_global_generator():
    first, second = GeneratorCalls(), GeneratorCalls()
    for calls, elsewhere in ((first, 0), (second, 5)):
        pl.seed_everything(3)
        model = tiny(g_fresh_latents=True, n_critic=2)
        torch.rand(elsewhere)  # the global generator moved on, as in a resumed run: the latents do not follow it
        fit(model, calls, iterations=2)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first.calls, second.calls))


def test_the_mean_pooled_resnet_critic_is_the_summed_one_with_its_last_input_divided_by_hw():
    torch.manual_seed(0)
    summed = Discriminator(ndf=16, image_size=32)
    averaged = Discriminator(ndf=16, image_size=32, pooling="mean")
    averaged.load_state_dict(summed.state_dict())
    images, bias = torch.rand(3, 3, 32, 32) * 2 - 1, summed.linear.bias
    assert torch.allclose(summed(images) - bias, 64 * (averaged(images) - bias), rtol=1e-5, atol=1e-5)  # 8x8 features
    with pytest.raises(UsageError, match="pooling='max' is not one of sum, mean"):
        Discriminator(pooling="max")


# preset -> (loss, n_critic, g_fresh_latents, lr_decay, lr, (beta1, beta2), gp_lambda, r1_gamma,
# spectral_norm, ema_decay), each as the preset's conf file cites its source
PRESETS = {
    "dcgan": ("ns", 1, False, "none", 2e-4, (0.5, 0.999), 0.0, 0.0, "none", None),  # the tutorial
    "sngan_resnet": ("hinge", 5, True, "linear", 2e-4, (0.0, 0.9), 0.0, 0.0, "d", None),  # Mimicry, Chainer code
    "wgan_gp_resnet": ("wasserstein", 5, True, "linear", 2e-4, (0.0, 0.9), 10.0, 0.0, "none", None),  # Mimicry
    "sngan": ("hinge", 1, True, "none", 1e-4, (0.5, 0.999), 0.0, 0.0, "d", None),  # chainer-gan-lib stdgan
    "wgan_gp": ("wasserstein", 5, True, "none", 1e-4, (0.5, 0.9), 10.0, 0.0, "none", None),  # gan_cifar.py
    "lsgan": ("least_squares", 1, False, "none", 2e-4, (0.5, 0.999), 0.0, 0.0, "none", None),  # train_chn.py
    "r1": ("ns", 1, True, "none", 1e-4, (0.0, 0.99), 0.0, 20.0, "none", 0.999),  # GAN_stability
}


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_composes_with_its_sources_values(preset: str):
    cfg = compose_config([f"model={preset}", "data.image_size=32", "data.channels=3"], shrink=False)
    hp = cfg.model
    assert (hp.loss, hp.n_critic, hp.g_fresh_latents, hp.lr_decay, hp.lr, (hp.beta1, hp.beta2), hp.gp_lambda,
            hp.r1_gamma, hp.spectral_norm, hp.ema_decay) == PRESETS[preset]


def test_the_wgan_gp_resnet_preset_builds_mimicrys_wgan_gp_networks():
    """Mimicry's WGANGPGenerator32 and WGANGPDiscriminator32 have its SN-GAN networks' layers (the
    same counts), D without spectral norm and with mean pooling."""
    model = instantiate(compose_config(["model=wgan_gp_resnet", "data.image_size=32", "data.channels=3"],
                                       shrink=False).model)
    assert (count(model.generator), count(model.discriminator)) == MIMICRY[32]
    assert model.discriminator.pooling == "mean"
    assert not any("parametrizations" in name for name, _ in model.discriminator.named_parameters())


def test_the_sngan_cifar10_experiment_is_mimicrys_setup():
    cfg = compose_config(["experiment=sngan_cifar10", "data.root=/data"], shrink=False)
    assert (cfg.data.name, cfg.data.split, cfg.data.image_size, cfg.data.channels) == ("CIFAR10", "train", 32, 3)
    assert (cfg.data.batch_size, cfg.data.hflip, cfg.data.batches_per_step) == (64, False, 5)
    assert cfg.trainer.max_steps == (cfg.model.n_critic + 1) * 100_000 and cfg.trainer.max_epochs == -1
    assert (cfg.model.lr_decay, cfg.model.g_fresh_latents, cfg.model.discriminator.pooling) == ("linear", True, "sum")
    assert compose_config(["experiment=sngan_cifar10", "model=wgan_gp_resnet", "data.root=/data"],
                          shrink=False).model.discriminator.pooling == "mean"


@pytest.mark.slow
def test_a_decaying_run_with_fresh_latents_resumes_with_the_rates_and_weights_of_an_uninterrupted_one(run_config, tmp_path: Path):
    options = ["model.lr_decay=linear", "model.g_fresh_latents=true", "model.n_critic=2", "data.batch_size=8",
               "trainer.max_epochs=2", "~callbacks.quality", "~callbacks.figures"]
    train(run_config(*options, f"paths.output_dir={tmp_path / 'whole'}"))
    with pytest.raises(SIGTERMException):
        train(run_config(*options, f"paths.output_dir={tmp_path / 'cut'}",
                         "+callbacks.interrupt={_target_: probes.Interrupt, after: 5, signal: TERM}"))
    cut = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    halfway = torch.load(cut, weights_only=True)
    assert 0 < halfway["lr_schedulers"][0]["last_epoch"] < 8  # stopped mid-run, its rates part decayed
    train(run_config(*options, f"paths.output_dir={tmp_path / 'resumed'}", f"ckpt_path={cut}"))
    whole, resumed = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
                      for name in ("whole", "resumed"))
    assert [s["last_epoch"] for s in resumed["lr_schedulers"]] == [s["last_epoch"] for s in whole["lr_schedulers"]] == [8, 8]
    assert [group["lr"] for state in resumed["optimizer_states"] for group in state["param_groups"]] == [0.0, 0.0]
    assert all(torch.allclose(whole["state_dict"][k], resumed["state_dict"][k], atol=1e-6)
               for k in whole["state_dict"] if k.startswith(("generator", "discriminator")))
