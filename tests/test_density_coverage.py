"""Density and coverage (Naeem et al. 2020) equal to the authors' own package, prdc, on the same
features: random ones, a set scored against itself, and fakes half copied from the reals (the
memorisation case these metrics exist to show)."""

import pytest
import torch
from prdc import compute_prdc

from dcgan.metrics.manifold import density_coverage, knn_radii


def prdc_density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int) -> tuple[float, float]:
    # float32, as prdc's docstring asks for its features
    result = compute_prdc(real.float().numpy(), fake.float().numpy(), nearest_k=k)
    return float(result["density"]), float(result["coverage"])


def equal(ours: tuple[torch.Tensor, torch.Tensor], theirs: tuple[float, float]) -> bool:
    """The same counts of points in balls: equal up to the last bits of the division (prdc
    multiplies by 1/k, we divide by k)."""
    return [float(value) for value in ours] == pytest.approx(theirs, rel=1e-12, abs=0)


def features(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).float()


@pytest.mark.parametrize("k", [3, 5])
def test_random_features_give_prdcs_numbers_to_1e_12(k: int):
    real, fake = features(400, 32, seed=0), 1.1 * features(300, 32, seed=1) + 0.2
    density, coverage = density_coverage(real, fake, k, chunk=128)  # several chunks of rows
    assert equal((density, coverage), prdc_density_coverage(real, fake, k))


def test_a_set_against_itself_has_density_one_as_in_prdc():
    real = features(500, 16, seed=2)
    density, coverage = density_coverage(real, real.clone(), 5, chunk=128)
    assert (float(density), float(coverage)) == prdc_density_coverage(real, real, 5) == (1.0, 1.0)


def test_half_copied_fakes_give_prdcs_density_to_1e_12():
    real = features(600, 16, seed=3)
    fake = torch.cat([real[:300], features(300, 16, seed=4)])  # half of them copies of real points
    density, coverage = density_coverage(real, fake, 5, chunk=128)
    assert equal((density, coverage), prdc_density_coverage(real, fake, 5))
    assert float(density) < 1  # with closed balls (<=) every copy's own ball would count it too


def test_kept_real_radii_give_the_same_numbers():
    real, fake = features(300, 8, seed=5), features(200, 8, seed=6)
    assert density_coverage(real, fake, 5, real_radii=knn_radii(real, 5)) == density_coverage(real, fake, 5)
