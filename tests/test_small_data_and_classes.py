"""Small datasets and class labels: x-flip, DiffAugment, labels from the folder layout, class-
conditional G and D, and generate.py's class, truncation and seeds."""

import math
import statistics
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from conftest import compose_config, generate_config
from dcgan.data.digits import DigitsDataModule
from dcgan.data.folder import ImageFolderDataModule
from dcgan.errors import UsageError
from dcgan.model.augment import POLICIES, DiffAugment
from dcgan.model.checkpoints import from_checkpoint
from dcgan.model.gan import DCGAN
from dcgan.model.networks.dcgan import Discriminator, Generator
from dcgan.model.sampling import truncated_normal
from generate import generate
from train import train


def save_images(folder: Path, count: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def labelled(root: Path, cache: bool = False, **options) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(str(root), image_size=16, batch_size=2, num_workers=0, labels=True, cache=cache, **options)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("cache", [False, True])
def test_each_images_class_is_its_first_level_subfolder_at_any_depth(tmp_path: Path, cache: bool):
    save_images(tmp_path / "cats", 3)
    save_images(tmp_path / "dogs" / "puppies" / "small", 2, seed=1)  # nested below its class folder
    dm = labelled(tmp_path, cache)
    assert dm.classes == ["cats", "dogs"] and dm.num_classes == 2
    images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.shape == (2, 3, 16, 16) and labels.dtype == torch.int64
    every = {(str(path.relative_to(tmp_path).parts[0]), label) for path, label in
             zip(dm.files, dm.dataset.labels)} if not cache else None
    assert every in (None, {("cats", 0), ("dogs", 1)})
    if cache:
        assert dm.image_labels.tolist() == [0, 0, 0, 1, 1]


def test_a_flat_folder_is_one_class_and_an_empty_class_folder_is_none(tmp_path: Path):
    save_images(tmp_path / "flat", 4)
    assert labelled(tmp_path / "flat").classes == ["flat"]
    save_images(tmp_path / "two" / "a", 2)
    save_images(tmp_path / "two" / "b", 2)
    (tmp_path / "two" / "empty").mkdir()
    with pytest.warns(UserWarning, match="empty hold no images, so they are not classes"):
        assert labelled(tmp_path / "two").classes == ["a", "b"]


def test_a_class_whose_images_all_fail_to_decode_is_one_line(tmp_path: Path):
    save_images(tmp_path / "a", 2)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "broken.png").write_bytes(b"not an image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning that b/broken.png is skipped
        with pytest.raises(UsageError, match="no image of class b can be read"):
            labelled(tmp_path)


def test_images_both_at_the_top_and_in_class_folders_are_refused(tmp_path: Path):
    save_images(tmp_path / "a", 2)
    save_images(tmp_path, 1)
    with pytest.raises(UsageError, match="has images both at its top level and in subfolders"):
        labelled(tmp_path)


def test_the_builtin_digits_carry_their_real_classes(digits_root: Path):
    dm = DigitsDataModule(str(digits_root), labels=True)
    dm.setup("fit")
    assert dm.classes == [str(d) for d in range(10)]
    sevens = [i for i, path in enumerate(dm.files) if path.parent.name == "7"]
    assert set(dm.image_labels[sevens].tolist()) == {7}


def test_x_flip_mirrors_about_half_the_images_the_same_way_each_time(tmp_path: Path):
    save_images(tmp_path, 32)
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=32, num_workers=0, cache=True, hflip=True)
    dm.setup("fit")
    indices = torch.arange(32)
    plain = dm.images[indices].float().mul(2 / 255).sub(1)
    flipped = dm.on_after_batch_transfer(indices, 0)
    mirrored = [bool(torch.equal(a, b.flip(-1))) for a, b in zip(flipped, plain)]
    unchanged = [bool(torch.equal(a, b)) for a, b in zip(flipped, plain)]
    assert all(m or u for m, u in zip(mirrored, unchanged)) and 8 <= sum(mirrored) <= 24
    assert torch.equal(dm.on_after_batch_transfer(indices, 0), flipped)  # the same step flips the same images


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_augmentation_keeps_shapes_and_ranges_passes_gradients_and_differs_per_image(policy: str):
    images = (torch.rand(8, 3, 16, 16) * 2 - 1).requires_grad_(True)
    out = DiffAugment([policy])(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    bound = 5 if policy == "color" else 1  # color: brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5]
    assert out.abs().max() <= bound
    out.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0  # differentiable: G learns through it
    same = torch.full((8, 3, 16, 16), 0.5).requires_grad_(False)
    same[:, :, 4:12, 3:8] = -0.5  # one image, eight times (no symmetry): the augmentations must still differ
    varied = DiffAugment([policy])(same, torch.Generator().manual_seed(1))
    assert len({tuple(image.flatten().tolist()) for image in varied}) > 1


def test_augmentation_names_are_checked():
    with pytest.raises(UsageError, match="augment: mirror is not a policy; the policies are color, translation, "
                                         "cutout, flip, rotate90"):
        DiffAugment(["mirror"])


def test_the_class_changes_what_g_makes_of_the_same_latent_and_how_d_judges_an_image():
    torch.manual_seed(0)
    g, d = Generator(nz=8, ngf=4, channels=1, image_size=16, num_classes=3), Discriminator(4, 1, 16, num_classes=3)
    zero, one = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        z = torch.randn(4, 8, 1, 1)
        images = g(z, zero)
        assert not torch.allclose(images, g(z, one))
        assert not torch.allclose(d(images, zero), d(images, one))


def test_spectral_norm_on_d_covers_the_projection_embedding():
    model = DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, num_classes=3, spectral_norm="d")
    embed = model.discriminator.embed
    for _ in range(30):  # one power iteration per training forward pass
        model.discriminator(torch.rand(8, 1, 16, 16) * 2 - 1, torch.arange(8) % 3)
    assert abs(float(torch.linalg.matrix_norm(embed.weight.detach(), ord=2)) - 1) < 0.05  # (classes, features)
    assert abs(float(torch.linalg.matrix_norm(embed.parametrizations.weight.original.detach(), ord=2)) - 1) > 0.2


def spread_across_latents(checkpoint: Path, classes: int) -> float:
    """The std of G's pixels across 64 latents, averaged over pixels, and its median over the classes."""
    model = from_checkpoint(checkpoint)
    z = torch.randn(64, model.hparams.nz, 1, 1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        if not classes:
            return float(model(z).std(0).mean())
        return statistics.median(float(model(z, torch.full((64,), c)).std(0).mean()) for c in range(classes))


def test_a_conditional_generator_varies_with_its_latents_early_on_as_an_unconditional_one_does(run_config,
                                                                                                tmp_path: Path):
    """80 iterations on the digits, with and without their classes. With Glorot-initialised class
    embeddings, D's class term started 16-22 times as spread as the rest of its logit (README), D won
    from the start and the conditional G's images varied with their latents two thirds as much as
    the unconditional G's (0.66 - 0.70 over 3 seeds; now 0.89 - 1.03), on the way to one grey blob."""
    spreads = []
    for labels in (False, True):
        out = tmp_path / f"labels-{labels}"
        train(run_config(f"paths.output_dir={out}", f"data.labels={str(labels).lower()}", "seed=0",
                         "trainer.limit_train_batches=null", "+trainer.max_steps=160", "trainer.max_epochs=1000",
                         "~callbacks.quality", "~callbacks.figures", "~callbacks.image_grids",
                         "callbacks.checkpoints.every_n_epochs=0", "callbacks.checkpoints.monitor=null"))
        spreads.append(spread_across_latents(out / "checkpoints" / "last.ckpt", 10 if labels else 0))
    unconditional, conditional = spreads
    assert conditional > 0.8 * unconditional, spreads


def labelled_batches(count: int, batch_size: int, classes: int) -> DataLoader:
    images = torch.rand(count, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return DataLoader(TensorDataset(images, torch.arange(count) % classes), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("fake_classes", ["data", "uniform"])
def test_d_judges_fakes_of_the_real_batchs_classes_and_so_does_its_gradient_penalty(fake_classes: str):
    """Per D update, D sees the real batch, the fake one and the penalty's points between them,
    then G's update the fake batch again: with fake_classes=data all four take the real batch's
    classes (the penalty joins images of one class, as Gulrajani et al.'s conditional code)."""
    model = DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, num_classes=5, gp_lambda=1.0, d_norm="none",
                  n_critic=2, fake_classes=fake_classes)
    seen = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(model, labelled_batches(64, 32, 5))
    assert len(seen) == 2 * (2 * 3 + 1)  # 2 iterations of 2 D updates (real, fake, penalty) of 16, then G
    for iteration in range(2):
        real, fake, penalty, real2, fake2, penalty2, for_g = seen[7 * iteration : 7 * iteration + 7]
        assert torch.equal(penalty, real) and torch.equal(penalty2, real2)  # the penalty judges by the real classes
        assert torch.equal(for_g, fake2)  # G trains on the last D update's fake batch
        assert torch.equal(fake, real) and torch.equal(fake2, real2) if fake_classes == "data" else \
            not torch.equal(fake, real)


@pytest.mark.parametrize("augment", [["cutout"], None])
def test_a_conditional_d_sees_every_image_augmented_in_training(augment: list[str] | None):
    """cutout blanks a square of at least 4x4 pixels of each image to exactly 0, a value the real
    images here never take and a fresh G's Tanh only in a few pixels (where ReLUs left nothing):
    every image of every batch D judges, real and fake, in D's update and in G's, carries one
    with augmentation and none without."""
    model = DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, num_classes=5, augment=augment)
    zeros = []
    model.discriminator.register_forward_pre_hook(lambda module, args: zeros.append((args[0] == 0).flatten(1).sum(1)))
    pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(model, labelled_batches(32, 8, 5))
    assert len(zeros) == 4 * 3  # per iteration: D(x), D(G(z)) for D, D(G(z)) for G
    assert all(bool((count >= 16).all()) if augment else bool((count < 16).all()) for count in zeros)


def test_a_conditional_grid_shows_one_class_per_row_with_the_same_latents():
    model = DCGAN(nz=8, ngf=4, ndf=4, channels=1, image_size=16, num_classes=10)
    asked = []
    model.generator.register_forward_pre_hook(lambda module, args: asked.append(args))
    with torch.no_grad():
        images, per_row = model.grid()
    (z, labels), = asked
    assert images.shape == (10 * 8, 1, 16, 16) and per_row == 8
    assert labels.tolist() == [row for row in range(10) for _ in range(8)]  # row r: class r
    assert all(torch.equal(z[8 * row : 8 * row + 8], model.fixed_noise[:8]) for row in range(10))
    rows = images.view(10, 8, -1)
    assert not any(torch.allclose(rows[0], rows[row]) for row in range(1, 10))  # each row shows its class


def test_truncation_draws_again_what_lies_beyond_it_rather_than_clamping():
    z = truncated_normal((20_000,), 0.5, torch.Generator().manual_seed(0))
    assert z.abs().max() < 0.5  # none beyond, and none piled up on the bound as clamping would
    # the standard normal restricted to [-0.5, 0.5]: P(|z| < 0.25) = (erf(0.25 / sqrt 2) / erf(0.5 / sqrt 2))
    inner = math.erf(0.25 / math.sqrt(2)) / math.erf(0.5 / math.sqrt(2))  # 0.516
    assert float((z.abs() < 0.25).float().mean()) == pytest.approx(inner, abs=0.01)


@pytest.fixture(scope="module")
def conditional(tmp_path_factory: pytest.TempPathFactory, digits_root: Path) -> Path:
    out = tmp_path_factory.mktemp("conditional")
    train(compose_config([f"paths.output_dir={out}", f"data.root={digits_root}", "data.labels=true",
                          "model.augment=[color,translation,cutout]", "~callbacks.figures"]))
    return out / "checkpoints" / "last.ckpt"


def test_a_conditional_run_trains_with_augmentation_and_records_its_classes(conditional: Path):
    hparams = torch.load(conditional, weights_only=True)["hyper_parameters"]
    assert hparams["num_classes"] == 10 and hparams["generator"]["num_classes"] == 10
    assert hparams["augment"] == ["color", "translation", "cutout"]


def test_generate_by_class_truncation_and_seeds(conditional: Path, tmp_path: Path, monkeypatch):
    seen = []
    forward = DCGAN.forward
    monkeypatch.setattr(DCGAN, "forward", lambda self, z, labels=None: (seen.append((z, labels)), forward(self, z, labels))[1])
    generate(generate_config(f"ckpt_path={conditional}", "num_images=6", "class=[2,5]", "truncation=0.5",
                             f"output_dir={tmp_path / 'a'}"))
    (z, labels), = seen
    assert labels.tolist() == [2, 5, 2, 5, 2, 5] and z.abs().max() < 0.5

    generate(generate_config(f"ckpt_path={conditional}", "seeds=0-5", f"output_dir={tmp_path / 'b'}"))
    generate(generate_config(f"ckpt_path={conditional}", "seeds=[4,1]", f"output_dir={tmp_path / 'c'}"))
    assert sorted(p.name for p in (tmp_path / "b").glob("seed*")) == [f"seed{s:04d}.png" for s in range(6)]
    for name in ("seed0001.png", "seed0004.png"):  # a seed's image whatever else is asked
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()
    assert (tmp_path / "b" / "seed0001.png").read_bytes() != (tmp_path / "b" / "seed0004.png").read_bytes()

    with pytest.raises(UsageError, match="class=12: 12 is not one of this checkpoint.s classes, 0=0, 1=1, 2=2"):
        generate(generate_config(f"ckpt_path={conditional}", "class=12", f"output_dir={tmp_path / 'd'}"))
