"""Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al.
2020) of generated images, from features (N, D) of real and (M, D) of generated ones: each set's
manifold is the union of balls around its points, each reaching the point's k-th nearest neighbour
in its own set. Precision and density say how much of G's output lies on the real manifold, recall
and coverage how much of the real manifold G reaches."""

from collections.abc import Iterator

import torch
from torch import Tensor

from dcgan.errors import UsageError

# Rows of distances held at once: 1024 x 50,000 in float32 is 200 MB, where all of a
# 50,000 x 50,000 matrix would be 10 GB.
CHUNK = 1024


def _distances(a: Tensor, b: Tensor, chunk: int) -> Iterator[Tensor]:
    """Euclidean distances from `chunk` rows of a at a time to all of b: (chunk, len(b)) blocks.
    In float32, as both papers' code and torch-fidelity: its rounding (cdist's |a|^2 + |b|^2 - 2ab,
    about 1e-6 of a distance) decides only a point that close to a ball's edge (none of a million
    pairs of 2048-D features, measured; but exact ties, e.g. a fake copying a real point, fall
    either side), where float64 takes twice as long on a CPU, up to 64 times on a consumer GPU."""
    a, b = a.float(), b.float()
    for start in range(0, len(a), chunk):
        yield torch.cdist(a[start : start + chunk], b)


def _check_k(k: int, *sets: Tensor) -> None:
    if not all(0 < k < len(features) for features in sets):
        raise UsageError(f"k={k} needs more than k points in each set ({', '.join(str(len(s)) for s in sets)} "
                         f"given): lower k or give more samples")


def knn_radii(features: Tensor, k: int, chunk: int = CHUNK) -> Tensor:
    """(N, D) -> (N,): each point's distance to its k-th nearest neighbour among the others, the
    (k+1)-th smallest counting its zero distance to itself (as both papers' code). Depends on the
    real features only, so a caller can compute it once and pass it as `real_radii`."""
    _check_k(k, features)
    return torch.cat([d.kthvalue(k + 1, 1).values for d in _distances(features, features, chunk)])


def _real_radii(real: Tensor, k: int, given: Tensor | None, chunk: int) -> Tensor:
    if given is None:
        return knn_radii(real, k, chunk)
    if given.shape != (len(real),):
        raise UsageError(f"real_radii has shape {tuple(given.shape)}, not ({len(real)},): "
                         f"compute it with knn_radii(real, k) from these real features")
    return given


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, real_radii: Tensor | None = None,
                     chunk: int = CHUNK) -> tuple[Tensor, Tensor]:
    """(precision, recall): the fraction of fakes inside some real point's ball (distance <= its
    radius), and of reals inside some fake's ball. real_radii: knn_radii(real, k), if kept."""
    _check_k(k, real, fake)
    real_radii = _real_radii(real, k, real_radii, chunk)
    fake_radii = knn_radii(fake, k, chunk)
    precision = torch.cat([(d <= real_radii).any(1) for d in _distances(fake, real, chunk)])  # (M,)
    recall = torch.cat([(d <= fake_radii).any(1) for d in _distances(real, fake, chunk)])  # (N,)
    return precision.double().mean(), recall.double().mean()


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, real_radii: Tensor | None = None,
                     chunk: int = CHUNK) -> tuple[Tensor, Tensor]:
    """(density, coverage): how many real balls hold each fake, over k and averaged (1 when G
    matches the real distribution, above 1 where fakes crowd dense real regions), and the fraction
    of reals whose nearest fake lies in their own ball. Balls are closed (<=, as torch-fidelity's
    precision): the authors' `<` leaves out a point on the edge, and every point whose radius is 0
    (k neighbours at the same spot, as in discrete features).
    real_radii: knn_radii(real, k), if kept."""
    _check_k(k, real, fake)
    real_radii = _real_radii(real, k, real_radii, chunk)
    balls = torch.cat([(d <= real_radii).sum(1) for d in _distances(fake, real, chunk)])  # (M,)
    nearest = torch.cat([d.min(1).values for d in _distances(real, fake, chunk)])  # (N,)
    return balls.double().sum() / (k * len(fake)), (nearest <= real_radii).double().mean()
