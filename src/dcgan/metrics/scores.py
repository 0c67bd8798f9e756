"""Every score of generated images, from features computed once per image: FID, KID and the
Inception Score by torch-fidelity's own functions and protocol (its statistics, its KID subsets
and polynomial kernel, its IS splits and shuffling, its seed), improved precision and recall,
density and coverage, and for class-conditional models the intra-class FID (the mean of each
class's FID, its fakes against its real images: Miyato & Koyama 2018). The training callback and
evaluate.py both call scores(), so the numbers during training and after are the same maths."""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_fidelity.defaults import DEFAULTS
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from dcgan.errors import UsageError
from dcgan.metrics.inception_score import inception_score
from dcgan.metrics.manifold import density_coverage, precision_recall

METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage", "intra_fid")
KID_SUBSETS = DEFAULTS["kid_subsets"]  # 100
KID_SEED = DEFAULTS["rng_seed"]  # 2020: which subsets KID draws (numpy's RandomState, not torch's streams)


def check_metrics(chosen: Sequence[str]) -> None:
    unknown = [name for name in chosen if name not in METRICS]
    if unknown or not chosen:
        raise UsageError(f"metrics: {', '.join(unknown) or 'none chosen'} is not a metric; "
                         f"choose from {', '.join(METRICS)}")


# torch-fidelity's functions take the generated set first (its input1), the real one second, as
# calculate_metrics calls them; its subsets and eigenvalues follow that order. Features are handed
# over in float32, as its extractor gives them: extract()'s float64 holds float32 values exactly.

def fid(real: Tensor, fake: Tensor) -> Tensor:
    """torch-fidelity's FID: means and covariances in numpy, the trace of the product's square root
    from its eigenvalues."""
    stats = [fid_features_to_statistics(features.detach().float().cpu()) for features in (fake, real)]
    return torch.tensor(fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"], dtype=torch.float64)


def kid(real: Tensor, fake: Tensor, subset_size: int) -> Tensor:
    """torch-fidelity's KID: the mean unbiased MMD^2 of its cubic polynomial kernel over KID_SUBSETS
    subsets of subset_size (at most the smaller set's size) per set, drawn with KID_SEED: the same
    features give the same KID, and training's random streams are untouched."""
    size = min(subset_size, len(real), len(fake))
    value = kid_features_to_metric(fake.detach().float().cpu(), real.detach().float().cpu(), kid_subsets=KID_SUBSETS,
                                   kid_subset_size=size, rng_seed=KID_SEED, verbose=False)
    return torch.tensor(value["kernel_inception_distance_mean"], dtype=torch.float64)


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
