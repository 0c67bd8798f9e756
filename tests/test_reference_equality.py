"""Our FID, KID, Inception Score and precision/recall equal torch-fidelity 0.4's on the same
images: through its own calculate_metrics (its feature extraction, statistics, KID subsets and
kernel, IS shuffling and splits, precision/recall), against our extract() and scores().

The real Inception-v3 weights cannot be fetched here. Both sides load the SAME randomly
initialised weights from one file in torch-fidelity's format (He-initialised, so that features
differ from image to image): what is compared is the network, its TF1-bilinear resize and the
metrics' protocols, not the trained weights' numbers. Ours reads the file through inception()'s
SHA-256 check, with the expected digest set to this file's."""

import hashlib
import urllib.error
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity import calculate_metrics
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

import dcgan.metrics.features
from conftest import with_random_weights
from dcgan.metrics.features import InceptionV3, extract, inception
from dcgan.metrics.scores import scores

METRICS = ["fid", "kid", "is", "precision", "recall"]


class Images(Dataset):
    """uint8 images (N, 3, H, W) as torch-fidelity reads a dataset: one (3, H, W) tensor per item."""

    def __init__(self, images: Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


def images(count: int, size: int, seed: int, detail: int, low: float = 0, high: float = 255) -> Tensor:
    """(count, 3, size, size) uint8: random colour fields at detail x detail in [low, high],
    smoothly enlarged, plus pixel noise: images within a set differ enough for a random network's
    features to tell them apart, sets of other colours are far apart."""
    generator = torch.Generator().manual_seed(seed)
    fields = low + torch.rand(count, 3, detail, detail, generator=generator) * (high - low)
    noise = torch.randn(count, 3, size, size, generator=generator) * 20
    return (F.interpolate(fields, size=(size, size), mode="bilinear") + noise).clamp(0, 255).round().to(torch.uint8)


def reference_metrics(fake: Tensor, real: Tensor, **kwargs) -> dict[str, float]:
    """torch-fidelity's calculate_metrics on the CPU with its defaults, but no DataLoader workers."""
    return calculate_metrics(input1=Images(fake), input2=Images(real), isc=True, fid=True, kid=True, prc=True,
                             cuda=False, save_cpu_ram=True, verbose=False, **kwargs)


def assert_equal_metrics(ours: dict[str, float], reference: dict[str, float]) -> None:
    names = {"fid": "frechet_inception_distance", "kid": "kernel_inception_distance_mean",
             "is": "inception_score_mean", "precision": "precision", "recall": "recall"}
    for name, theirs in names.items():
        assert ours[name] == pytest.approx(reference[theirs], rel=1e-4), name


# Fast: the metrics' protocols, in a small feature space torch-fidelity runs as its own extractor.

class Pixels(FeatureExtractorBase):
    """A feature extractor in torch-fidelity's interface: each image's pixels, scaled. Serves as
    its own IS logits too, so that every metric of calculate_metrics reads the same features."""

    def __init__(self, name: str, features_list: list[str], **kwargs):
        super().__init__(name, features_list)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return (pixels(images),)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("pixels",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "pixels"

    @staticmethod
    def can_be_compiled() -> bool:
        return False


def pixels(images: Tensor) -> Tensor:
    return images.flatten(1).float() / 64  # (B, 3 * H * W): logits of a few units


def test_metrics_of_given_features_are_torch_fidelitys_within_1e_4_relative():
    if "pixels-test" not in FEATURE_EXTRACTORS_REGISTRY:  # once per process
        register_feature_extractor("pixels-test", Pixels)
    fake, real = images(60, 4, seed=0, detail=2), images(50, 4, seed=1, detail=4)  # 48 features
    reference = reference_metrics(fake, real, feature_extractor="pixels-test", kid_subset_size=40)
    ours = scores(METRICS, pixels(real).double(), pixels(fake).double(), pixels(fake).double(), kid_subset_size=40)
    assert ours["fid"] > 1 and 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1  # not degenerate
    assert_equal_metrics(ours, reference)


# Inception-v3: our extractor with the weights both sides load.

@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dict of torch-fidelity's Inception-v3, randomly initialised (He, seeded), its batch
    norms' statistics measured on 8 images (else features barely differ between images), in a file."""
    with pytest.MonkeyPatch.context() as patch:
        network = with_random_weights(patch, FeatureExtractorInceptionV3, "inception-v3-compat", ["2048"])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for module in network.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = None  # the statistics of all it sees, equally
                module.reset_running_stats()
        nn.init.normal_(network.fc.weight, std=0.1)  # logits that differ by units between images: IS above 1
    with torch.no_grad():
        network.train()(images(8, 32, seed=5, detail=4))
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def ours(weights: Path) -> nn.Module:
    """Our Inception-v3, built by inception() from the file (offline, its SHA-256 expected)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dcgan.metrics.features, "INCEPTION_SHA256", hashlib.sha256(weights.read_bytes()).hexdigest())
        patch.setattr(dcgan.metrics.features.urllib.request, "urlopen", offline)
        return inception(str(weights))


def offline(*args, **kwargs):
    raise urllib.error.URLError("no network")


class Seen(Exception):
    """Raised by a hook to stop a forward pass once its input to a layer is seen."""


def test_inception_resizes_as_tensorflow_1_whatever_torchmetrics_does(monkeypatch):
    # torch's interpolate (torchmetrics >= 1.9 resizes with its antialiased bilinear) made to fail:
    # the resize is torch-fidelity's TF1 bilinear, exactly, into the first convolution (whatever
    # the weights: default random ones, the cheapest to build)
    ours = with_random_weights(monkeypatch, InceptionV3, "inception-v3-compat", ["2048"])

    def torch_interpolate(*args, **kwargs):
        raise AssertionError("torch's interpolate resized the Inception input")

    def stop(module: nn.Module, args: tuple[Tensor]) -> None:
        raise Seen(args[0])

    monkeypatch.setattr(F, "interpolate", torch_interpolate)
    hook = ours.Conv2d_1a_3x3.register_forward_pre_hook(stop)
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    try:
        with pytest.raises(Seen) as seen:
            extract(ours, image)
    finally:
        hook.remove()
    tf1 = interpolate_bilinear_2d_like_tensorflow1x(image.float(), size=(299, 299), align_corners=False)
    assert torch.equal(seen.value.args[0], (tf1 - 128) / 128)


def features_kept(cache: Path, name: str, layer: str) -> Tensor:
    return torch.load(cache / f"{name}-inception-v3-compat-features-{layer}.pt", weights_only=True)


@pytest.fixture(scope="module")
def through_both(ours: nn.Module, weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """20 fake and 20 real 32x32 images through our extract() and scores() (batches of 8) and
    through torch-fidelity's calculate_metrics (one batch), whose features are read back from the
    cache it writes."""
    fake, real = images(20, 32, seed=0, detail=3, high=160), images(20, 32, seed=1, detail=6, low=96)
    fake_features, fake_logits = (torch.cat(parts) for parts in zip(*[extract(ours, batch, logits=True)
                                                                       for batch in fake.split(8)]))
    real_features = torch.cat([extract(ours, batch)[0] for batch in real.split(8)])
    cache = tmp_path_factory.mktemp("fidelity-cache")
    # its precision/recall defaults to VGG-16's features: asked for in Inception's, as ours
    reference = reference_metrics(fake, real, feature_extractor="inception-v3-compat", kid_subset_size=15,
                                  feature_extractor_weights_path=str(weights), cache_root=str(cache),
                                  input1_cache_name="fake", input2_cache_name="real")
    return {"ours": scores(METRICS, real_features, fake_features, fake_logits, kid_subset_size=15),
            "reference": reference,
            "features": [(fake_features, features_kept(cache, "fake", "2048")),
                         (real_features, features_kept(cache, "real", "2048")),
                         (fake_logits, features_kept(cache, "fake", "logits_unbiased"))]}


@pytest.mark.slow  # 80 passes through Inception-v3 on a CPU: a minute
def test_inception_features_and_logits_are_torch_fidelitys_within_1e_5(through_both: dict):
    for ours, theirs in through_both["features"]:
        assert ours.shape == theirs.shape and ours.std(0).mean() > 1e-2  # images told apart
        assert (ours - theirs.double()).abs().max() <= 1e-5  # measured: 0, bit for bit (batches of 8 and 20)


@pytest.mark.slow
def test_fid_kid_is_precision_recall_are_torch_fidelitys_within_1e_4_relative(through_both: dict):
    ours, reference = through_both["ours"], through_both["reference"]
    # measured: FID 405, KID 1.29, IS 1.22, precision 0.05, recall 0.65, each torch-fidelity's to every digit
    assert ours["is"] > 1.1 and ours["fid"] > 1 and ours["kid"] > 0.1 and 0 < ours["precision"] < ours["recall"] < 1
    assert_equal_metrics(ours, reference)
    fake, real = through_both["features"][0][1], through_both["features"][1][1]
    full = prc_features_to_metric(fake, real, verbose=False)  # its default path, all distances at once
    assert (ours["precision"], ours["recall"]) == pytest.approx((full["precision"], full["recall"]), rel=1e-4)


@pytest.mark.slow
def test_inception_features_of_images_larger_than_its_input_are_torch_fidelitys_within_1e_5(ours: nn.Module,
                                                                                            weights: Path):
    # 320x320 shrinks to 299: TF1's bilinear takes 2x2 neighbours, no antialiasing filter
    large = images(3, 320, seed=2, detail=8)
    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    assert (extract(ours, large)[0] - reference(large)[0].double()).abs().max() <= 1e-5
