"""Every score of generated images, from features computed once per image: FID and KID
(torchmetrics), the Inception Score (from the extractor's class logits), improved precision and
recall, density and coverage, and for class-conditional models the intra-class FID (the mean of
each class's FID, its fakes against its real images: Miyato & Koyama 2018). The training callback
and evaluate.py both call scores(), so the numbers during training and after are the same maths."""

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from dcgan.errors import UsageError
from dcgan.metrics.inception_score import inception_score
from dcgan.metrics.manifold import density_coverage, precision_recall


class GivenFeatures(nn.Module):
    """torchmetrics' FID and KID receive features computed once, not images (no second pass)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage", "intra_fid")


def check_metrics(chosen: Sequence[str]) -> None:
    unknown = [name for name in chosen if name not in METRICS]
    if unknown or not chosen:
        raise UsageError(f"metrics: {', '.join(unknown) or 'none chosen'} is not a metric; "
                         f"choose from {', '.join(METRICS)}")


def fid(real: Tensor, fake: Tensor) -> Tensor:
    metric = FrechetInceptionDistance(feature=GivenFeatures(real.shape[1]), sync_on_compute=False).to(real.device)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return metric.compute()


def kid(real: Tensor, fake: Tensor, subset_size: int) -> Tensor:
    """The mean over 100 subsets of subset_size (at most the smaller set's size), drawn from a
    fixed seed: the same features give the same KID, and training's random streams are untouched."""
    with warnings.catch_warnings():  # "KID keeps all features": it is given them, here
        warnings.simplefilter("ignore")
        metric = KernelInceptionDistance(feature=GivenFeatures(real.shape[1]), sync_on_compute=False,
                                         subset_size=min(subset_size, len(real), len(fake))).to(real.device)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws the subsets with torch's CPU generator
        torch.manual_seed(0)
        return metric.compute()[0]


def scores(metrics: Sequence[str], real: Tensor, fake: Tensor, fake_logits: Tensor | None = None,
           real_labels: Tensor | None = None, fake_labels: Tensor | None = None, kid_subset_size: int = 1000,
           k_precision: int = 3, k_density: int = 5) -> dict[str, float]:
    """The chosen metrics of fake features (M, D) against real ones (N, D); is needs the fakes'
    class logits (M, K), intra_fid both sets' labels. The k are the papers' (3 and 5)."""
    check_metrics(metrics)
    result: dict[str, Tensor] = {}
    if "fid" in metrics:
        result["fid"] = fid(real, fake)
    if "kid" in metrics:
        result["kid"] = kid(real, fake, kid_subset_size)
    if "is" in metrics:
        if fake_logits is None:
            raise UsageError("metric is (the Inception Score) needs a feature extractor with class logits")
        result["is"] = inception_score(fake_logits)[0]
    if {"precision", "recall"} & set(metrics):
        result["precision"], result["recall"] = precision_recall(real, fake, k_precision)
    if {"density", "coverage"} & set(metrics):
        result["density"], result["coverage"] = density_coverage(real, fake, k_density)
    if "intra_fid" in metrics:
        if real_labels is None or fake_labels is None:
            raise UsageError("metric intra_fid is for class-conditional models (data.labels=true)")
        classes = sorted(set(real_labels.tolist()) & set(fake_labels.tolist()))
        result["intra_fid"] = torch.stack([fid(real[real_labels == c], fake[fake_labels == c]) for c in classes]).mean()
    return {name: float(value) for name, value in result.items() if name in metrics}
