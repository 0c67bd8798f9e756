"""Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al.
2020) of generated images, from features (N, D) of real and (M, D) of generated ones: each set's
manifold is the union of balls around its points, each reaching the point's k-th nearest neighbour
in its own set. Precision and density say how much of G's output lies on the real manifold, recall
and coverage how much of the real manifold G reaches."""

from collections.abc import Iterator

import torch
from torch import Tensor
from torch_fidelity.metric_prc import calculate_precision_recall_part

from dcgan.errors import UsageError

# Rows of distances held at once: 512 x 50,000 in float64 is 200 MB, where all of a
# 50,000 x 50,000 matrix would be 20 GB.
CHUNK = 512


def _distances(a: Tensor, b: Tensor, chunk: int) -> Iterator[Tensor]:
    """Euclidean distances from `chunk` rows of a at a time to all of b: (chunk, len(b)) blocks.
    Computed in float64 and rounded to float32, as prdc's (scikit-learn upcasts float32 features
    and returns float32 distances): a distance met twice (a fake copying a real point, a set scored
    against itself) then rounds to the same number both times, so the ball-edge ties that these
    cases are made of are decided as in the authors' code (cdist's |a|^2 + |b|^2 - 2ab in float32
    would leave about 1e-3 of a distance of noise on them). Float64 costs twice float32's time on
    a CPU, up to 64 times on a consumer GPU."""
    a, b = a.double(), b.double()
    for start in range(0, len(a), chunk):
        yield torch.cdist(a[start : start + chunk], b).float()


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


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, chunk: int = CHUNK) -> tuple[Tensor, Tensor]:
    """(precision, recall) by torch-fidelity's own code (its memory-saving path, `chunk` rows at a
    time): the fraction of fakes inside some real point's ball (distance <= its radius), and of
    reals inside some fake's ball, from float32 distances (cdist on the features' device)."""
    _check_k(k, real, fake)
    # torch-fidelity's convention: generated first. Its means are float32 (0.6 is 0.6000000238).
    precision, recall = calculate_precision_recall_part(fake.detach().float(), real.detach().float(), k, chunk)
    return torch.tensor(precision, dtype=torch.float64), torch.tensor(recall, dtype=torch.float64)


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, real_radii: Tensor | None = None,
                     chunk: int = CHUNK) -> tuple[Tensor, Tensor]:
    """(density, coverage) as Naeem et al.'s prdc computes them: how many real balls hold each
    fake, over k and averaged (1 when G matches the real distribution, above 1 where fakes crowd
    dense real regions), and the fraction of reals whose nearest fake lies in their own ball.
    Balls are open (distance < radius, prdc's `<`): a set scored against itself has density 1, as
    each real ball then holds k of its points (itself and k - 1 neighbours, the k-th on its edge).
    real_radii: knn_radii(real, k), if kept."""
    _check_k(k, real, fake)
    real_radii = _real_radii(real, k, real_radii, chunk)
    # Rows are reals, as prdc's distance_real_fake and as knn_radii's rows: a distance and the
    # radius it meets are the same computation when a fake equals a real point.
    inside, nearest = 0, []
    for start, d in zip(range(0, len(real), chunk), _distances(real, fake, chunk)):  # (chunk, M)
        radii = real_radii[start : start + chunk, None]
        inside += int((d < radii).sum())
        nearest.append(d.min(1).values)
    covered = torch.cat(nearest) < real_radii  # (N,)
    return torch.tensor(inside / (k * len(fake)), dtype=torch.float64), covered.double().mean()
