"""The GAN step follows the seed: D on real and fake, then G through the updated D, G run once."""

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from dcgan.model.gan import DCGAN


def fit(model: DCGAN, callback: pl.Callback, batches: int = 3, batch_size: int = 8) -> None:
    images = torch.rand(batches * batch_size, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, callbacks=[callback],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(images, batch_size=batch_size))


def tiny_model() -> DCGAN:
    return DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16)


class Snapshots(pl.Callback):
    """Copies of G's and D's parameters just before each optimizer step."""

    def __init__(self):
        self.taken: list[tuple[torch.optim.Optimizer, list[torch.Tensor], list[torch.Tensor]]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        copy = lambda net: [p.detach().clone() for p in net.parameters()]  # noqa: E731
        self.taken.append((optimizer, copy(pl_module.generator), copy(pl_module.discriminator)))


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_d_update_leaves_g_and_g_update_leaves_d_untouched():
    model, snapshots = tiny_model(), Snapshots()
    fit(model, snapshots)
    opt_g, opt_d = (o.optimizer if hasattr(o, "optimizer") else o for o in model.trainer.optimizers)
    steps = snapshots.taken
    assert [s[0] for s in steps[:4]] == [opt_d, opt_g, opt_d, opt_g]  # D first, then G, each batch
    (_, g0, d0), (_, g1, d1), (_, g2, d2) = steps[:3]
    assert same(g0, g1) and not same(d0, d1)  # the D step moved D only
    assert same(d1, d2) and not same(g1, g2)  # the G step moved G only


def test_generator_runs_once_per_step():
    model = tiny_model()
    calls = []
    model.generator.register_forward_hook(lambda *args: calls.append(1))
    fit(model, pl.Callback(), batches=3)
    assert len(calls) == 3


def test_adam_settings_follow_the_hyperparameters():
    model = DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, lr=1e-4, beta1=0.3)
    opt_g, opt_d = model.configure_optimizers()
    for opt, net in ((opt_g, model.generator), (opt_d, model.discriminator)):
        assert isinstance(opt, torch.optim.Adam)
        assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.3, 0.999)
        assert {id(p) for p in opt.param_groups[0]["params"]} == {id(p) for p in net.parameters()}


def test_fixed_noise_is_a_checkpointed_buffer():
    model = tiny_model()
    assert model.fixed_noise.shape == (64, 8, 1, 1)
    assert "fixed_noise" in model.state_dict()


def test_the_g_update_goes_through_the_d_that_the_d_update_just_changed():
    model, snapshots = tiny_model(), Snapshots()
    seen = []  # D's first weight at each of its forward passes
    model.discriminator.register_forward_hook(lambda module, args, out: seen.append(module.main[0].weight.detach().clone()))
    fit(model, snapshots, batches=2)
    opt_g = model.trainer.optimizers[0]
    updated = [d[0] for opt, _, d in snapshots.taken if opt is opt_g or getattr(opt, "optimizer", None) is opt_g]
    assert len(seen) == 6 and len(updated) == 2  # per iteration: D(x), D(G(z)) for D's update, D(G(z)) for G's
    for iteration in range(2):
        real, fake, for_g = seen[3 * iteration : 3 * iteration + 3]
        assert torch.equal(real, fake) and torch.equal(for_g, updated[iteration]) and not torch.equal(real, for_g)


def test_ema_after_two_updates_is_the_closed_form_average():
    decay = 0.2  # the ramp (1 + t) / (10 + t) is below it at t = 1 and above it at t = 2
    model = DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, ema_decay=decay)
    average = [p.detach().clone() for p in model.generator.parameters()]  # the average starts at G's init
    after = []

    class Weights(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            after.append([p.detach().clone() for p in pl_module.generator.parameters()])

    fit(model, Weights(), batches=2)
    for t, weights in enumerate(after, start=1):  # t: iterations done when the average is updated
        d = min(decay, (1 + t) / (10 + t))
        average = [d * a + (1 - d) * w for a, w in zip(average, weights)]
    for expected, actual in zip(average, model.generator_ema.parameters()):
        assert torch.allclose(actual, expected, atol=1e-6, rtol=0)
    for ema_buffer, buffer in zip(model.generator_ema.buffers(), model.generator.buffers()):
        assert torch.equal(ema_buffer, buffer)  # BatchNorm's statistics are copied, not averaged
