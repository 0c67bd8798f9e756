"""Quality: FID/KID, the best checkpoint, the EMA generator, generation, interpolation, figures."""

import hashlib
import io
import math
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import dcgan.metrics.features
from conftest import compose_config, generate_config, run_script, with_random_weights
from dcgan.data.folder import Folder
from dcgan.data.images import Decoded
from dcgan.errors import UsageError
from dcgan.metrics.features import FeaturesUnavailable, digit_classifier, extract, inception
from dcgan.metrics.scores import scores
from dcgan.model.checkpoints import from_checkpoint
from dcgan.model.gan import DCGAN
from dcgan.model.sampling import interpolation_latents, slerp, to_uint8
from generate import generate
from train import train


def scalars(run: Path) -> dict[str, list[float]]:
    (events,) = (run / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return {tag: [e.value for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_fid_and_kid_are_logged_and_the_best_generator_is_kept(run_config, tmp_path: Path):
    metrics = train(run_config("trainer.max_epochs=2"))
    assert metrics["val/fid"] > 0 and "val/kid" in metrics
    logged = scalars(tmp_path / "run")
    assert len(logged["val/fid"]) == 2  # every epoch (callbacks.quality.every_n_epochs=1)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["callbacks"]  # a full checkpoint, whose epoch had the lowest FID so far
    best_epoch = min(range(2), key=lambda e: logged["val/fid"][e])
    assert best["epoch"] == best_epoch


def test_every_metric_chosen_lands_in_the_metrics_and_tensorboard(run_config, tmp_path: Path):
    chosen = ["fid", "kid", "is", "precision", "recall", "density", "coverage", "intra_fid"]
    metrics = train(run_config("data.labels=true", f"callbacks.quality.metrics=[{','.join(chosen)}]"))
    assert {f"val/{name}" for name in chosen} <= set(metrics) <= set(scalars(tmp_path / "run")) | {"epoch"}
    assert 1 <= metrics["val/is"] <= 10 and all(0 <= metrics[f"val/{name}"] <= 1 for name in ("precision", "recall", "coverage"))
    with pytest.raises(UsageError, match="intra_fid is for class-conditional models"):
        train(run_config("callbacks.quality.metrics=[intra_fid]"))
    with pytest.raises(UsageError, match="metrics: fd is not a metric; choose from fid, kid, is"):
        train(run_config("callbacks.quality.metrics=[fd]"))


def test_without_its_features_training_goes_on_without_the_metric(run_config):
    with pytest.warns(UserWarning, match="Training goes on without val/fid and val/kid"):
        metrics = train(run_config("callbacks.quality.features={_target_: probes.unavailable_features, _partial_: true}"))
    assert "val/fid" not in metrics and "train/loss_g" in metrics


@pytest.fixture(scope="module")
def trained_generator(tmp_path_factory: pytest.TempPathFactory, digits_root: Path) -> DCGAN:
    """The digits preset trained for 10 epochs (about 20 s on 2 cores): recognisable digits."""
    out = tmp_path_factory.mktemp("digits")
    train(compose_config([f"paths.output_dir={out}", f"data.root={digits_root}", "trainer.max_epochs=10",
                          "trainer.accelerator=cpu", "callbacks.progress_bar.refresh_rate=0", "~callbacks.quality",
                          "~callbacks.figures", "~callbacks.image_grids"], shrink=False))
    return from_checkpoint(out / "checkpoints" / "last.ckpt")


def test_the_digit_classifier_is_the_same_feature_space_whatever_the_runs_seed(digits_root: Path, tmp_path: Path):
    built = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # the run's seed, set before the metrics are built
        classifier = digit_classifier(str(digits_root), weights=str(tmp_path / f"{seed}.pt"), epochs=1)
        built.append(torch.cat([p.flatten() for p in classifier.parameters()]))
    assert torch.equal(*built)


@pytest.mark.slow
def test_fid_and_kid_put_real_images_first_a_trained_generator_next_and_noise_last(digits_root: Path,
                                                                                 trained_generator: DCGAN):
    dataset = Decoded(Folder(digits_root), 32, 1)
    real = torch.stack([dataset[i] for i in torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))])
    classifier = digit_classifier(str(digits_root))
    real_features = extract(classifier, real[:800])[0]

    def measure(images: torch.Tensor) -> tuple[float, float]:
        values = scores(["fid", "kid"], real_features, extract(classifier, images)[0], kid_subset_size=100)
        return values["fid"], values["kid"]

    same = measure(real[:800])
    other_real = measure(real[800:1600])
    with torch.no_grad():
        z = torch.randn(800, trained_generator.hparams.nz, 1, 1, generator=torch.Generator().manual_seed(0))
        trained = measure(to_uint8(trained_generator(z)))
    noise = measure(torch.randint(0, 256, (800, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    # Measured: FID 0, 9, 163, 2062; KID (unbiased, so it can go below 0) -84, -14, 2183, 13254
    assert abs(same[0]) < 1e-3 and abs(same[1]) < trained[1] / 10  # the same images: no distance
    assert other_real[0] < trained[0] / 5 and abs(other_real[1]) < trained[1] / 10  # other real images: close
    assert noise[0] > 5 * trained[0] and noise[1] > 3 * trained[1]  # noise: far further than what G learnt


def random_inception_weights(path: Path, monkeypatch) -> None:
    """Inception-v3's layers with random weights, in the file format of the real ones (which
    cannot be fetched here), so that everything but the numbers is as in a real run."""
    from dcgan.metrics.features import InceptionV3

    network = with_random_weights(monkeypatch, InceptionV3, name="inception-v3-compat", features_list=["2048"])
    torch.save(network.state_dict(), path)


def offline(*args, **kwargs):
    raise urllib.error.URLError("no network")


@pytest.mark.slow  # Inception-v3 on a CPU: seconds
def test_inception_features_feed_fid_and_kid_without_a_download(tmp_path: Path, monkeypatch):
    weights = tmp_path / "inception.pth"
    random_inception_weights(weights, monkeypatch)
    monkeypatch.setattr(dcgan.metrics.features, "INCEPTION_SHA256", hashlib.sha256(weights.read_bytes()).hexdigest())
    monkeypatch.setattr(dcgan.metrics.features.urllib.request, "urlopen", offline)
    extractor = inception(str(weights))
    assert (extractor.num_features, extractor.in_channels) == (2048, 3)
    grey = torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8)  # digits-like: greyscale, small
    (real, _), (fake, logits) = extract(extractor, grey), extract(extractor, grey.flip(-1), logits=True)
    values = scores(["fid", "kid", "precision", "recall"], real, fake, kid_subset_size=3, k_precision=2)
    assert all(math.isfinite(value) for value in values.values()) and values["fid"] > 0
    assert logits.shape == (6, 1008)  # the Inception Score's classes, from the same pass


class Payload:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).parent / "PWNED_WEIGHTS",))


def test_inception_weights_that_are_not_the_release_are_refused_and_never_unpickled(tmp_path: Path, monkeypatch):
    marker = Path(__file__).parent / "PWNED_WEIGHTS"
    weights = tmp_path / "weights.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": Payload()}, weights)
    with pytest.raises(FeaturesUnavailable, match=f"{weights} is not the FID Inception weights"):
        inception(str(weights))
    assert not marker.exists()

    hub = tmp_path / "hub"  # a damaged download is refused and not kept
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(dcgan.metrics.features.urllib.request, "urlopen", lambda *args, **kwargs: io.BytesIO(b"<html>"))
    with pytest.raises(FeaturesUnavailable, match="was damaged"):
        inception()
    assert not hub.exists()


def test_missing_inception_weights_say_where_to_put_them(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(dcgan.metrics.features.urllib.request, "urlopen", offline)
    target = tmp_path / "weights.pth"
    with pytest.raises(FeaturesUnavailable, match=f"download {dcgan.metrics.features.INCEPTION_URL} to {target}"):
        inception(str(target))


def test_ema_is_a_passive_average_that_sampling_uses(run_config, tmp_path: Path):
    train(run_config("model.ema_decay=0.9", f"paths.output_dir={tmp_path / 'ema'}"))
    train(run_config(f"paths.output_dir={tmp_path / 'plain'}"))
    with_ema = from_checkpoint(tmp_path / "ema" / "checkpoints" / "last.ckpt")
    plain = from_checkpoint(tmp_path / "plain" / "checkpoints" / "last.ckpt")
    assert plain.generator_ema is None and "generator_ema.main.0.weight" in with_ema.state_dict()
    for live, without in zip(with_ema.generator.parameters(), plain.generator.parameters()):
        assert torch.equal(live, without)  # the average never feeds back into training
    assert not torch.equal(with_ema.generator_ema.main[0].weight, with_ema.generator.main[0].weight)
    z = torch.randn(8, with_ema.hparams.nz, 1, 1)
    with torch.no_grad():
        sampled = with_ema(z)
        with_ema.generator, with_ema.generator_ema = with_ema.generator_ema, None
        assert torch.allclose(sampled, with_ema(z))  # forward samples from the averaged G


def test_slerp_runs_between_the_endpoints_on_the_sphere():
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # equal norms
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[:, 0], a, atol=1e-5) and torch.allclose(path[:, -1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=2), a.norm(dim=1, keepdim=True).expand(-1, 5), rtol=1e-4)
    assert interpolation_latents(torch.randn(4, 2, 16), steps=6).shape == (24, 16, 1, 1)


def test_training_ends_with_the_seeds_figures(run_config, tmp_path: Path):
    train(run_config("trainer.max_epochs=2"))
    run = tmp_path / "run"
    (events,) = (run / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
    accumulator.Reload()
    grids = [image.step for image in accumulator.Images("samples/fixed_noise")]
    assert grids == [0, 1, 3, 5, 7]  # after the first, every 2 iterations, and at each epoch end (3 and 7)
    assert Image.open(run / "progress.gif").n_frames == len(grids)  # the seed's animation, one frame a grid
    gif = Image.open(run / "progress.gif")
    gif.seek(gif.n_frames - 1)  # its last frame is the last grid, in GIF's 256 colours
    grid = Image.open(io.BytesIO(accumulator.Images("samples/fixed_noise")[-1].encoded_image_string))
    assert np.abs(np.asarray(gif.convert("RGB"), float) - np.asarray(grid.convert("RGB"), float)).mean() < 3
    assert Image.open(run / "loss_curves.png").size[0] > 0 and Image.open(run / "real_vs_fake.png").size[0] > 0
    assert len(accumulator.Images("samples/interpolation")) == 2  # at each epoch end


def test_after_a_resume_the_figures_cover_the_whole_training(run_config, tmp_path: Path):
    train(run_config("trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'first'}"))  # grids at 0, 1, 3

    def resume(into: str) -> Image.Image:
        train(run_config("trainer.max_epochs=2", f"paths.output_dir={tmp_path / into}",
                         f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}"))  # grids at 5, 7
        return Image.open(tmp_path / into / "progress.gif")

    assert resume("second").n_frames == 5
    shutil.rmtree(tmp_path / "first" / "tensorboard")  # the first segment's events are gone: say so, go on
    with pytest.warns(UserWarning, match="the figures miss iterations 0 to 3"):
        assert resume("third").n_frames == 2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, digits_root: Path) -> Path:
    out = tmp_path_factory.mktemp("trained")
    train(compose_config([f"paths.output_dir={out}", f"data.root={digits_root}"]))
    return out / "checkpoints" / "last.ckpt"


def test_generate_writes_images_and_a_grid_and_the_same_seed_repeats(checkpoint: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_script("generate.py", f"ckpt_path={checkpoint}", "num_images=10", f"output_dir={tmp_path / 'a'}",
                      "seed=5", "interpolation_steps=5") is None  # as a user runs it
    for name, seed in (("b", 5), ("c", 6)):
        generate(generate_config(f"ckpt_path={checkpoint}", "num_images=10", f"output_dir={tmp_path / name}",
                                 f"seed={seed}", "interpolation_steps=5"))
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == [f"{i:05d}.png" for i in range(10)] + ["grid.png", "interpolation.png"]
    assert Image.open(tmp_path / "a" / "00000.png").size == (16, 16)
    same = all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    differs = (tmp_path / "a" / "00000.png").read_bytes() != (tmp_path / "c" / "00000.png").read_bytes()
    assert same and differs
    assert Image.open(tmp_path / "a" / "interpolation.png").size == (5 * 18 + 2, 8 * 18 + 2)  # 8 rows of 5 steps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # generation writes only its images


def test_a_last_batch_is_never_a_handful_of_images(checkpoint: Path, tmp_path: Path, monkeypatch):
    sizes = []  # G normalises each batch with its own statistics: a batch of one gives a poor image
    forward = DCGAN.forward
    monkeypatch.setattr(DCGAN, "forward", lambda self, z, labels=None: (sizes.append(len(z)), forward(self, z, labels))[1])
    generate(generate_config(f"ckpt_path={checkpoint}", "num_images=65", "batch_size=64", f"output_dir={tmp_path}"))
    assert sizes == [33, 32] and len(list(tmp_path.glob("0*.png"))) == 65


@pytest.mark.parametrize("kind", ["missing", "not torch", "foreign"])
def test_a_missing_or_foreign_checkpoint_is_a_one_line_error(tmp_path: Path, monkeypatch, kind: str):
    path = tmp_path / "x.ckpt"
    if kind == "not torch":
        path.write_text("hello")
    elif kind == "foreign":
        torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}, "hyper_parameters": {}}, path)
    with pytest.raises(UsageError, match=f"ckpt_path={path} (does not exist|is not a checkpoint of this template)"):
        generate(generate_config(f"ckpt_path={path}", f"output_dir={tmp_path / 'out'}"))
    if kind == "missing":  # as a user sees it: python generate.py exits with this line alone
        monkeypatch.chdir(tmp_path)
        said = run_script("generate.py", f"ckpt_path={path}", f"output_dir={tmp_path / 'out'}")
        assert said.startswith(f"error: ckpt_path={path} does not exist") and "\n" not in said


@pytest.mark.gpu
def test_a_checkpoint_trained_on_gpu_generates_on_cpu(run_config, tmp_path: Path):
    train(run_config("trainer.accelerator=gpu"))
    assert run_script("generate.py", f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", "device=cpu",
                      f"output_dir={tmp_path / 'out'}") is None
    assert (tmp_path / "out" / "grid.png").exists()
