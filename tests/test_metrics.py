"""Metrics beside FID/KID: the Inception Score, precision/recall, density/coverage, and the class
logits the feature extractors give for the first (tests/test_reference_equality.py: all of them
against torch-fidelity's calculate_metrics on the same images)."""

import math

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from conftest import with_random_weights
from dcgan.errors import UsageError
from dcgan.metrics.features import DigitClassifier, InceptionV3
from dcgan.metrics.inception_score import inception_score
from dcgan.metrics.manifold import density_coverage, knn_radii, precision_recall


def test_inception_score_by_hand():
    # a = logits (ln 3, 0): p(y|a) = (3/4, 1/4); b the mirror image. One part, {a, b, a, a}: p(y) =
    # (5/8, 3/8), KL(p(y|a) || p(y)) = 3/4 ln(6/5) + 1/4 ln(2/3), KL(p(y|b) || p(y)) = 1/4 ln(2/5)
    # + 3/4 ln 2; the score is exp of their mean over the four.
    a, b = [math.log(3), 0.0], [0.0, math.log(3)]
    mean, std = inception_score(torch.tensor([a, b, a, a], dtype=torch.float64), splits=1)
    kl_a, kl_b = 0.75 * math.log(6 / 5) + 0.25 * math.log(2 / 3), 0.25 * math.log(2 / 5) + 0.75 * math.log(2)
    assert mean.item() == pytest.approx(math.exp((3 * kl_a + kl_b) / 4), rel=1e-12)
    assert std.item() == 0 and mean.dtype == torch.float64


def test_inception_score_is_torch_fidelitys_shuffled_with_its_seed():
    logits = 3 * torch.randn(1003, 20, generator=torch.Generator().manual_seed(0))  # parts of 100 and 101
    reference = isc_features_to_metric(logits, splits=10)  # its defaults: shuffled, seed 2020
    mean, std = inception_score(logits, splits=10)
    assert mean.item() == pytest.approx(reference["inception_score_mean"], rel=1e-12)
    assert std.item() == pytest.approx(reference["inception_score_std"], rel=1e-12)
    assert inception_score(logits, splits=10, seed=1)[0] != mean  # the seed is what orders the parts


def test_a_class_sorted_set_is_shuffled_before_it_is_split():
    # 100 images of class a, then 100 of b: consecutive parts would each hold one class (score 1);
    # shuffled, each part holds both, about half each (3^(3/4) / 2 = 1.14 at exactly half)
    a, b = [math.log(3), 0.0], [0.0, math.log(3)]
    mean, _ = inception_score(torch.tensor([a] * 100 + [b] * 100, dtype=torch.float64), splits=10)
    assert 1.1 < mean.item() <= 3 ** 0.75 / 2 + 1e-12


def test_inception_score_needs_a_sample_per_part():
    with pytest.raises(UsageError, match="splits=10"):
        inception_score(torch.randn(3, 5), splits=10)


# k = 1, so each radius is the distance to the nearest other point of the same set:
#   real (0,0) (2,0) (10,0) (12,0):        radii 2, 2, 2, 2
#   fake (0,1) (1,1) (14,0) (20,0) (21,0): radii 1, 1, 6, 1, 1
# Each metric meets a point on a ball's edge (integer distances, exact in float32): precision and
# recall's balls are closed (torch-fidelity's <=), density and coverage's open (prdc's <).
REAL = torch.tensor([[0.0, 0], [2, 0], [10, 0], [12, 0]])
FAKE = torch.tensor([[0.0, 1], [1, 1], [14, 0], [20, 0], [21, 0]])


def test_precision_and_recall_by_hand():
    # precision: (0,1) is 1 from (0,0), (1,1) is sqrt 2 from it, (14,0) is 2 from (12,0) (on the
    # edge); (20,0) and (21,0) are 8 and 9 from (12,0): 3/5. Recall: (0,0) is 1 from (0,1) (on
    # the edge), (10,0) and (12,0) are 4 and 2 from (14,0) (radius 6); (2,0) is sqrt 2 and sqrt 5
    # from (1,1) and (0,1) (radius 1), 12 from (14,0): 3/4.
    precision, recall = precision_recall(REAL, FAKE, k=1)
    assert (precision.item(), recall.item()) == pytest.approx((0.6, 0.75), rel=1e-7)  # torch-fidelity's float32 mean


def test_density_and_coverage_by_hand():
    # Open balls, as prdc (distance < radius). Density: (0,1) lies in the ball of (0,0) only ((2,0)
    # is sqrt 5 away), (1,1) in those of (0,0) and (2,0) (sqrt 2 each), (14,0) on the edge of
    # (12,0)'s (outside) and 4 from (10,0), the others in none: (1 + 2) / (k=1 * 5 fakes) = 3/5.
    # Coverage: the nearest fakes of (0,0) and (2,0) are 1 and sqrt 2 away (< 2), those of (12,0)
    # and (10,0) 2 (on the edge) and 4: 2/4.
    density, coverage = density_coverage(REAL, FAKE, k=1)
    assert (density.item(), coverage.item()) == (0.6, 0.5)


def random_sets(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(300, 16, generator=generator), 1.2 * torch.randn(200, 16, generator=generator) + 0.3


def test_precision_and_recall_match_torch_fidelity():
    real, fake = random_sets(0)
    reference = calculate_precision_recall_full(fake, real, neighborhood=3)  # (generated, real) there
    precision, recall = precision_recall(real, fake)
    assert 0 < precision.item() < 1 and 0 < recall.item() < 1
    assert (precision.item(), recall.item()) == pytest.approx(reference, abs=1e-6)  # its mean is float32


def test_a_copy_of_the_real_set_scores_one():
    # Each open real ball holds its centre and k - 1 = 4 of its 5 nearest neighbours (the 5th on
    # its edge, outside): 5 balls per fake, over k = 5 (tests/test_density_coverage.py: as prdc).
    real, _ = random_sets(3)
    precision, recall = precision_recall(real, real.clone())
    density, coverage = density_coverage(real, real.clone())
    assert precision == recall == coverage == density == 1


@pytest.mark.parametrize("metric", [precision_recall, density_coverage])
def test_chunked_distances_change_nothing(metric):
    real, fake = random_sets(1)
    assert metric(real, fake, chunk=37) == metric(real, fake)  # 37 rows at a time: blocks end mid-set


def test_k_needs_more_points_in_each_set():
    real, fake = random_sets(2)
    with pytest.raises(UsageError, match="k=5"):
        density_coverage(real, fake[:5])
    with pytest.raises(UsageError, match="k=3"):
        precision_recall(real[:3], fake)
    with pytest.raises(UsageError, match="real_radii"):
        density_coverage(real, fake, real_radii=knn_radii(real[:100], 5))


def test_digit_classifier_logits_are_its_head_on_its_features():
    model = DigitClassifier()
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    features = model(images)
    assert torch.equal(model.logits(features), model.head(features))
    assert torch.equal(model.classify(images), model.logits(features).argmax(1))


def test_inception_features_and_logits_are_torch_fidelitys_2048_and_logits_unbiased(monkeypatch):
    # Built with random weights (the real ones cannot be fetched here), the same on both sides: what
    # is compared is the network and which layer the logits come from, not the trained numbers
    ours = with_random_weights(monkeypatch, InceptionV3, name="inception-v3-compat", features_list=["2048"])
    reference = with_random_weights(monkeypatch, FeatureExtractorInceptionV3, "inception-v3-compat",
                                    ["2048", "logits_unbiased"])
    reference.load_state_dict(ours.state_dict())  # strict: the same layers under the same names
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    features, logits = reference(images)
    assert (ours.num_features, ours.in_channels) == (2048, 3)
    assert torch.equal(ours(images), features) and torch.equal(ours.logits(features), logits)
