"""ADA's p follows D's overfitting heuristic at the paper's speed, is logged, resumes exactly, and is
the same on every rank (resumes of whole runs: tests/test_resume.py); G learns through the augmentation
and the options are checked. The pipeline's transforms: tests/test_ada_pipeline.py."""

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from dcgan.data.memory import InMemoryDataModule
from dcgan.errors import UsageError
from dcgan.model.ada import AdaptiveAugment
from dcgan.model.gan import DCGAN
from train import train


def test_p_moves_by_the_sign_of_rt_minus_the_target_at_the_papers_speed():
    ada = AdaptiveAugment(target=0.6, interval=4, kimg=1, p=0.5)  # 1,000 images from 0 to 1
    for iteration in range(1, 4):  # three iterations of 8 images each, 7 called real: no adjustment yet
        ada.observe(torch.tensor([1.0] * 7 + [-1.0]))
        ada.adjust(iteration, lambda sums: sums)
        assert ada.p == 0.5
    ada.observe(torch.tensor([1.0] * 7 + [-1.0]))
    ada.adjust(4, lambda sums: sums)
    assert ada.rt == pytest.approx(0.75) and ada.p == pytest.approx(0.5 + 32 / 1000)  # r_t above 0.6: up
    assert ada.signs.tolist() == [0, 0]  # counted again from nothing
    for iteration in range(5, 9):  # r_t = 0.25 (and with four ranks' sums, four times the images)
        ada.observe(torch.tensor([1.0] * 5 + [-1.0] * 3))
        ada.adjust(iteration, lambda sums: sums * 4)
    assert ada.rt == pytest.approx(0.25) and ada.p == pytest.approx(0.532 - 128 / 1000)  # down
    ada.p.fill_(0.001)
    ada.observe(-torch.ones(100))
    ada.adjust(12, lambda sums: sums)
    assert ada.p == 0  # kept in [0, 1]


def test_gradients_reach_g_through_the_pipeline():
    model = DCGAN(nz=8, ngf=4, ndf=4, channels=3, image_size=16, ada_target=0.6, ada_p=1.0)
    fake = model.generator(torch.randn(8, 8, 1, 1))
    augmented = model.augment(fake, torch.Generator().manual_seed(0))
    assert not torch.allclose(augmented, fake)  # the pipeline is in the path
    model.discriminator(augmented).sum().backward()
    gradients = [parameter.grad for parameter in model.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in gradients)


def test_ada_options_are_checked():
    options = {"nz": 8, "ngf": 4, "ndf": 4, "channels": 1, "image_size": 16}
    with pytest.raises(UsageError, match="ada_target=1.5 must be in \\(0, 1\\), e.g. 0.6"):
        DCGAN(**options, ada_target=1.5)
    with pytest.raises(UsageError, match="ada_pipeline='bgcf' is not one of blit, geom, color, bg, bgc, diffaugment"):
        DCGAN(**options, ada_target=0.6, ada_pipeline="bgcf")
    with pytest.raises(UsageError, match="augment=\\['cutout'\\] picks DiffAugment policies, which ADA's bgc pipeline "
                                         "does not take: set model.augment=null, or model.ada_pipeline=diffaugment"):
        DCGAN(**options, ada_target=0.6, augment=["cutout"])
    with pytest.raises(UsageError, match="augment: mirror is not a policy"):
        DCGAN(**options, ada_target=0.6, ada_pipeline="diffaugment", augment=["mirror"])


def noise_images(n: int = 16, size: int = 16) -> torch.Tensor:
    """(n, 3, size, size) uint8 noise: a D memorises 16 of them within a few dozen iterations."""
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


def fit(model: DCGAN, epochs: int, checkpoint: Path | None = None, callbacks: list | None = None) -> pl.Trainer:
    """Train model on noise_images(), one iteration an epoch, from checkpoint if given."""
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                         callbacks=callbacks)
    trainer.fit(model, datamodule=InMemoryDataModule(noise_images(), batch_size=16), ckpt_path=checkpoint)
    return trainer


def small_ada(**options) -> DCGAN:  # each adjustment of p moves it by 16 images / 320 = 0.05
    pl.seed_everything(0, verbose=False)  # the same initial weights every time
    return DCGAN(nz=8, ngf=8, ndf=8, channels=3, image_size=16, **{"ada_target": 0.6, "ada_interval": 1,
                                                                    "ada_kimg": 0.32, **options})


class Trace(pl.Callback):
    """(r_t, p) after each iteration."""

    def __init__(self):
        self.steps: list[tuple[float, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: DCGAN, *args) -> None:
        self.steps.append((module.augment.rt.item(), module.augment.p.item()))


def test_p_rises_while_d_overfits_a_few_images():
    model, trace = small_ada(ada_kimg=0.16), Trace()  # p moves by 0.1 an iteration
    trainer = fit(model, 12, callbacks=[trace])
    before = [0.0] + [p for _, p in trace.steps]
    assert all(rt > 0.6 for (rt, p), old in zip(trace.steps, before) if p > old)  # up only while D overfits
    assert model.augment.p > 0.15  # from 0, up more often than down
    assert trainer.logged_metrics["train/ada_p"] == model.augment.p


def test_a_resumed_run_goes_on_with_the_same_p_and_running_sums(tmp_path: Path):
    """Cut between two adjustments (every 3 iterations), the sums since the last one resume too."""
    whole = small_ada(ada_interval=3, ada_kimg=1, ada_p=0.5)
    fit(whole, 8)
    first = small_ada(ada_interval=3, ada_kimg=1, ada_p=0.5)
    trainer = fit(first, 4)
    trainer.save_checkpoint(tmp_path / "cut.ckpt")
    assert first.augment.signs[1] == 16  # one iteration's real images since the adjustment after the third
    resumed = small_ada(ada_interval=3, ada_kimg=1, ada_p=0.5)
    fit(resumed, 8, tmp_path / "cut.ckpt")
    assert whole.augment.p != 0.5
    for name, value in whole.augment.state_dict().items():
        assert torch.equal(resumed.augment.state_dict()[name], value), name


@pytest.fixture(scope="module")
def few_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("few")
    for i, image in enumerate(noise_images()):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / f"{i:02d}.png")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["bgc", "diffaugment"])
def test_p_rises_in_a_configured_run_on_a_few_images_and_is_logged(run_config, few_images: Path, pipeline: str):
    metrics = train(run_config("experiment=cifar32", f"data.root={few_images}", "data.cache=true",
                               "trainer.max_epochs=40", "trainer.limit_train_batches=null", "model.ada_target=0.6",
                               f"model.ada_pipeline={pipeline}", "model.ada_interval=1", "model.ada_kimg=0.32",
                               "~callbacks.quality", "~callbacks.figures", "~callbacks.image_grids"))
    assert metrics["train/ada_p"] >= 0.5  # from 0, by 16 / 320 = 0.05 an epoch: up more often than down (0.8)


class Undecided(torch.nn.Module):
    """A D that cannot tell anything apart: every logit 0, so r_t = 0 (its gradients are 0 too)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1).mean(1) * (self.weight * 0)


def test_p_falls_while_d_does_not_overfit():
    model = DCGAN(nz=8, ngf=4, channels=3, image_size=16, discriminator={"_target_": "test_ada.Undecided"},
                  ada_target=0.6, ada_interval=1, ada_kimg=0.32, ada_p=0.9)
    images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=6, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(model, datamodule=InMemoryDataModule(images, batch_size=16))
    assert model.augment.rt == 0 and model.augment.p == pytest.approx(0.9 - 6 * 0.05)  # 6 iterations of 16 images
    assert trainer.logged_metrics["train/ada_p"] == pytest.approx(0.6)
