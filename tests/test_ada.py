"""ADA: p follows D's overfitting heuristic at the paper's speed, is applied per image, is logged,
and is the same on every rank (resumes: tests/test_resume.py)."""

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


def test_each_operation_reaches_each_image_with_probability_p():
    images = torch.linspace(-1, 1, 16 * 16).reshape(1, 1, 16, 16).repeat(2000, 3, 1, 1)
    generator = torch.Generator().manual_seed(0)
    for p, expected in ((0.0, 0.0), (0.3, 0.3), (1.0, 0.75)):  # p = 1: a quarter of turns are by 0 degrees
        ada = AdaptiveAugment(["rotate90"], p=p)
        changed = (ada(images, generator) != images).flatten(1).any(1).float().mean()
        assert changed == pytest.approx(expected * (0.75 if p < 1 else 1), abs=0.03)


def test_ada_options_are_checked():
    with pytest.raises(UsageError, match="ada_target=1.5 must be in \\(0, 1\\), e.g. 0.6"):
        DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, ada_target=1.5)
    with pytest.raises(UsageError, match="augment: mirror is not a policy"):
        DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, ada_target=0.6, augment=["mirror"])


@pytest.fixture(scope="module")
def few_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("few")
    rng = np.random.default_rng(0)
    for i in range(16):  # a D memorises 16 noise images within a few dozen iterations
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def ada_run(run_config, root: Path, *overrides: str) -> dict[str, float]:
    return train(run_config("experiment=cifar32", f"data.root={root}", "data.cache=true", "trainer.max_epochs=40",
                            "trainer.limit_train_batches=null", "model.ada_target=0.6", "model.ada_interval=1",
                            "model.ada_kimg=0.32", "~callbacks.quality", "~callbacks.figures",
                            "~callbacks.image_grids", *overrides))


def test_p_rises_while_a_small_d_overfits_a_few_images_and_is_logged(run_config, few_images: Path):
    metrics = ada_run(run_config, few_images)  # each iteration (one a epoch) may move p by 16 / 320 = 0.05
    assert metrics["train/ada_rt"] > 0.6 and metrics["train/ada_p"] >= 0.3


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
