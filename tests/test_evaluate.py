"""evaluate.py: a checkpoint or a folder of samples scored against a data preset, offline, with the
protocol beside the numbers, the real side's features kept per dataset and protocol, subsets drawn
at random from a seed, and one-line errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16
from torch_fidelity.metric_isc import isc_features_to_metric

from conftest import ROOT, compose_config, evaluate_config
from dcgan.data.folder import Folder
from dcgan.data.images import Decoded, find_images
from dcgan.errors import UsageError
from dcgan.metrics.features import digit_classifier, extract
from dcgan.metrics.vgg import VGG16_URL, vgg16
from evaluate import evaluate
from train import train

EVERY = {"fid", "kid", "is", "precision", "recall", "density", "coverage"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, digits_root: Path) -> Path:
    """A class-conditional digits run of one short epoch, in the digit classifier's features."""
    out = tmp_path_factory.mktemp("run")
    train(compose_config([f"paths.output_dir={out}", f"data.root={digits_root}", "data.labels=true", "data.image_size=32",
                          "callbacks.quality.features.root=" + str(digits_root), "~callbacks.figures",
                          "~callbacks.image_grids"]))
    return out / "checkpoints" / "last.ckpt"


def test_a_checkpoint_is_scored_against_its_runs_data_in_its_runs_features(checkpoint: Path, tmp_path: Path):
    cache = tmp_path / "reference"
    result = evaluate(evaluate_config(f"ckpt_path={checkpoint}", "num_fake=200", f"cache_dir={cache}", "progress=false"))
    assert set(result["metrics"]) == EVERY | {"intra_fid"}  # a class-conditional checkpoint: intra-class FID too
    protocol = result["protocol"]
    assert (protocol["features"], protocol["resize"], protocol["num_fake"], protocol["num_real"]) == \
        ("digit_classifier", "torch-fidelity", 200, 1797)
    assert protocol["reference_features"].startswith("computed and kept in")
    written = json.loads(checkpoint.with_suffix(".scores.json").read_text())
    assert written == json.loads(json.dumps(result))
    again = evaluate(evaluate_config(f"ckpt_path={checkpoint}", "num_fake=200", f"cache_dir={cache}", "progress=false"))
    assert again["protocol"]["reference_features"].startswith("read from") and again["metrics"] == result["metrics"]
    other = evaluate(evaluate_config(f"ckpt_path={checkpoint}", "num_fake=200", f"cache_dir={cache}", "progress=false",
                                     "resize=clean-fid", "metrics=[fid]", f"output={tmp_path / 'clean.json'}"))
    assert other["protocol"]["resize"] == "clean-fid" and other["metrics"]["fid"] != result["metrics"]["fid"]
    assert len(list(cache.iterdir())) == 2  # one file of real features per protocol


def test_real_images_scored_as_samples_are_on_the_real_manifold(digits_root: Path, tmp_path: Path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for index, path in enumerate(find_images(digits_root)):  # the real digits themselves, in one folder
        shutil.copy(path, samples / f"{index:04d}.png")
    result = evaluate(evaluate_config(f"samples={samples}", "data=digits", f"data.root={digits_root}", "features=digits",
                                      f"features.root={digits_root}", "cache_dir=null", "progress=false"))
    metrics = result["metrics"]
    assert abs(metrics["fid"]) < 1e-3 and metrics["precision"] == metrics["recall"] == metrics["coverage"] == 1
    assert "fewer than num_fake=50,000" in result["protocol"]["generated"]
    assert (tmp_path / "samples.scores.json").exists()


@pytest.mark.parametrize("overrides, message", [
    (["ckpt_path={ckpt}", "samples=x"], "give either ckpt_path=<a .ckpt> \\(its generator is sampled\\) or samples="),
    (["samples=x", "resize=bilinear"], "resize=bilinear is not a protocol: torch-fidelity or clean-fid"),
    (["samples={digits}"], "which real images\\? choose them with data=<preset> data.root=..."),
    (["ckpt_path={ckpt}", "metrics=[fd]"], "metrics: fd is not a metric"),
    (["ckpt_path={ckpt}", "data=digits", "data.root={digits}", "data.image_size=16"],
     "the checkpoint makes 32x32 images with 1 channels, the data is 16x16 with 1: set data.image_size"),
])
def test_bad_input_is_one_line(checkpoint: Path, digits_root: Path, overrides: list[str], message: str):
    given = [override.format(ckpt=checkpoint, digits=digits_root) for override in overrides]
    with pytest.raises(UsageError, match=message):
        evaluate(evaluate_config(*given, "num_fake=10", "cache_dir=null", "progress=false"))


def test_a_samples_folder_without_images_is_named_as_samples_before_any_work(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    # no data= given: the samples' folder is what the user is told of first, by its own key
    with pytest.raises(UsageError, match=f"^samples={tmp_path / 'empty'} holds no images: expected bmp/"):
        evaluate(evaluate_config(f"samples={tmp_path / 'empty'}", "progress=false"))
    with pytest.raises(UsageError, match=f"^samples={tmp_path / 'nowhere'} is not a folder: point samples at a folder"):
        evaluate(evaluate_config(f"samples={tmp_path / 'nowhere'}", "progress=false"))


@pytest.mark.slow
def test_the_command_shows_progress_and_the_protocol(checkpoint: Path, tmp_path: Path):
    done = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), f"ckpt_path={checkpoint}", "num_fake=100",
                           "metrics=[fid,is]", f"output={tmp_path / 'out.json'}", f"cache_dir={tmp_path}"],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "sampling and features: 100%" in done.stderr and "real images' features: 100%" in done.stderr
    assert "100 samples of" in done.stdout and "features: digit_classifier, resize: torch-fidelity" in done.stdout
    failed = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "samples=nowhere", "ckpt_path=x"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert failed.returncode == 1 and failed.stderr.strip() == \
        "error: give either ckpt_path=<a .ckpt> (its generator is sampled) or samples=<a folder of images>"


def digits_as_samples(digits_root: Path, tmp_path: Path, *overrides: str, features: str = "digits") -> dict:
    """The built-in digits folder (sorted by class: 0/, 1/, ...) scored as samples against itself."""
    in_features = ["features=digits", f"features.root={digits_root}"] if features == "digits" else [f"features={features}"]
    return evaluate(evaluate_config(f"samples={digits_root}", "data=digits", f"data.root={digits_root}", *in_features,
                                    "progress=false", f"output={tmp_path / 'scores.json'}", *overrides))


def test_a_real_set_smaller_than_a_training_batch_is_scored(digits_root: Path, tmp_path: Path):
    # data=folder trains with batches of 128 and drops a short one; scoring reads every image, whole batches or not
    real, samples = tmp_path / "real", tmp_path / "samples"
    for folder, files in ((real, find_images(digits_root)[:20]), (samples, find_images(digits_root)[-20:])):
        folder.mkdir()
        for path in files:
            shutil.copy(path, folder / f"{path.parent.name}-{path.name}")
    result = evaluate(evaluate_config(f"samples={samples}", "data=folder", f"data.root={real}", "data.image_size=32",
                                      "data.channels=1", "data.cache_dir=null", "features=digits",
                                      f"features.root={digits_root}", "cache_dir=null", "progress=false",
                                      "metrics=[fid]", f"output={tmp_path / 'scores.json'}"))
    assert result["protocol"]["real_subset"] == "all 20" and result["metrics"]["fid"] > 0


def test_fewer_samples_than_a_class_sorted_folder_holds_are_a_random_draw(digits_root: Path, tmp_path: Path):
    # The first 900 files in sorted order are the digits 0-4 only: FID 202.6 against all of them
    result = digits_as_samples(digits_root, tmp_path, "num_fake=900", "subset_seed=1", "metrics=[fid]", "cache_dir=null")
    assert result["metrics"]["fid"] < 5  # 1.3 (half of the same images), where the digits 0-4 alone give 202.6
    protocol = result["protocol"]
    assert protocol["subset_seed"] == 1 and protocol["real_subset"] == "all 1,797"
    assert protocol["generated"] == f"900 images of {digits_root} (of 1,797, drawn with subset_seed=1)"


def test_the_inception_score_of_a_class_sorted_folder_is_torch_fidelitys_within_5_percent(digits_root: Path,
                                                                                           tmp_path: Path):
    # IS in the digit classifier's classes: the logits of the same images, read in sorted order as
    # torch-fidelity reads a folder, scored by torch-fidelity (10 splits of its shuffled order: 9.41);
    # split in sorted order each part would hold about one class (IS 1.13)
    result = digits_as_samples(digits_root, tmp_path, "metrics=[is]", "cache_dir=null")
    images = Decoded(Folder(digits_root), 32, 1)  # as evaluate reads them: data=digits is 32x32 grey
    _, logits = extract(digit_classifier(root=str(digits_root)), torch.stack([images.image(i) for i in range(len(images))]),
                        logits=True)
    reference = isc_features_to_metric(logits, splits=10)["inception_score_mean"]
    assert reference > 8  # ten classes, each confidently recognised
    assert result["metrics"]["is"] == pytest.approx(reference, rel=0.05)


def test_real_features_are_kept_per_subset_and_per_labels(checkpoint: Path, digits_root: Path, tmp_path: Path):
    cache = tmp_path / "reference"
    common = [f"cache_dir={cache}", "progress=false", "metrics=[fid]"]
    # an unconditional evaluation of the checkpoint's data first (no labels kept) ...
    first = digits_as_samples(digits_root, tmp_path, "num_fake=100", *common)
    assert first["protocol"]["reference_features"].startswith("computed and kept in")
    # ... then the class-conditional checkpoint, whose intra-class FID needs the real labels
    result = evaluate(evaluate_config(f"ckpt_path={checkpoint}", "num_fake=100", f"cache_dir={cache}", "progress=false",
                                      "metrics=[fid,intra_fid]", f"output={tmp_path / 'conditional.json'}"))
    assert result["protocol"]["reference_features"].startswith("computed and kept in")
    assert result["metrics"]["intra_fid"] > 0 and result["metrics"]["fid"] > 0
    # another draw of num_real is other real features, never the first draw's read back
    drawn = [digits_as_samples(digits_root, tmp_path, "num_fake=100", "num_real=500", f"subset_seed={seed}", *common)
             for seed in (0, 1)]
    assert [r["protocol"]["reference_features"].split(" in ")[0] for r in drawn] == ["computed and kept"] * 2
    assert drawn[0]["metrics"]["fid"] != drawn[1]["metrics"]["fid"]
    assert drawn[0]["protocol"]["real_subset"] == "500 of 1,797 drawn with subset_seed=0"
    assert len(list(cache.iterdir())) == 4


def test_vgg16_without_its_weights_is_one_line_naming_the_file(digits_root: Path, tmp_path: Path):
    missing = tmp_path / "vgg16-397923af.pth"
    with pytest.raises(UsageError, match=f"download {VGG16_URL} to {missing}, or set features.weights="):
        digits_as_samples(digits_root, tmp_path, f"features.weights={missing}", "cache_dir=null", features="vgg16")


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's VGG-16 with random weights (the real ones cannot be fetched here), saved as its
    ImageNet weights are: a state dict. 553 MB."""
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(torchvision.models.vgg16(weights=None).state_dict(), path)
    return path


@pytest.mark.slow
def test_vgg16_fc2_features_are_torch_fidelitys_within_1e_5(vgg_weights: Path):
    # the same random weights on both sides: the network, its cut at fc2 + ReLU, the resize and the
    # normalisation are what is compared
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ours = vgg16(str(vgg_weights))(images)
    theirs = FeatureExtractorVGG16("vgg16-fc2", ["fc2_relu"], feature_extractor_weights_path=str(vgg_weights))(images)[0]
    assert ours.shape == (3, 4096) and (ours > 0).any()
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-5 * theirs.abs().max().item())


@pytest.mark.slow
def test_precision_and_recall_run_in_vgg16_features(vgg_weights: Path, digits_root: Path, tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    for path in find_images(digits_root)[::150]:  # 12 digits of every class
        shutil.copy(path, real / path.name)
    result = evaluate(evaluate_config(f"samples={real}", "data=folder", f"data.root={real}", "data.image_size=16",
                                      "data.channels=1", "data.batch_size=4", "features=vgg16", f"features.weights={vgg_weights}",
                                      "cache_dir=null", "progress=false", f"output={tmp_path / 'vgg.json'}"))
    assert result["protocol"]["features"] == "vgg16"
    assert set(result["metrics"]) == EVERY - {"is"}  # VGG-16's fc2 has no class logits
    assert result["metrics"]["precision"] == result["metrics"]["recall"] == 1  # the real images themselves


@pytest.mark.slow
def test_the_training_callback_scores_in_vgg16_features(vgg_weights: Path, digits_root: Path, tmp_path: Path):
    metrics = train(compose_config([f"paths.output_dir={tmp_path / 'run'}", "experiment=folder", f"data.root={digits_root}",
                                    "data.image_size=16", "data.channels=1", "+features@callbacks.quality.features=vgg16",
                                    f"callbacks.quality.features.weights={vgg_weights}", "callbacks.quality.num_fake=8",
                                    "callbacks.quality.num_real=8", "callbacks.quality.kid_subset_size=4",
                                    "callbacks.quality.metrics=[precision,recall]", "callbacks.checkpoints.monitor=null",
                                    "objective=val/precision", "objective_direction=maximize", "trainer.limit_train_batches=1",
                                    "~callbacks.figures", "~callbacks.image_grids"]))
    assert 0 <= metrics["val/precision"] <= 1 and 0 <= metrics["val/recall"] <= 1
