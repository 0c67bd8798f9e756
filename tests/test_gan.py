"""The GAN step follows the seed: D on real and fake, then G through the updated D, G run once."""

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from dcgan.gan import DCGAN


def fit(model: DCGAN, callback: pl.Callback, batches: int = 3) -> None:
    images = torch.rand(batches * 8, 1, 16, 16) * 2 - 1
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=2 * batches, logger=False, callbacks=[callback],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(images, batch_size=8))


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
