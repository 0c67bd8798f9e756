"""The Inception Score (Salimans et al. 2016) of generated images, from the class logits their
features give (the extractor's `logits`): high when each image is confidently one class and the
images spread over many classes. Computed by torch-fidelity's own function, with its protocol."""

import torch
from torch import Tensor
from torch_fidelity.defaults import DEFAULTS
from torch_fidelity.metric_isc import isc_features_to_metric

from dcgan.errors import UsageError

SPLITS = DEFAULTS["isc_splits"]  # 10
SEED = DEFAULTS["rng_seed"]  # 2020: the order the samples are shuffled in before they are split


def inception_score(logits: Tensor, splits: int = SPLITS, seed: int = SEED) -> tuple[Tensor, Tensor]:
    """(mean, std) over `splits` parts of exp(mean_x KL(p(y|x) || p(y))), p(y) the part's mean,
    from logits (N, K), in float64, as torch-fidelity: the rows shuffled by numpy's RandomState(seed)
    first (a class-sorted set would otherwise put about one class in each part), part i holding
    rows i*N//splits up to (i+1)*N//splits, std over parts as published (np.std)."""
    if not 0 < splits <= len(logits):
        raise UsageError(f"splits={splits} needs at least 1 and at most one part per sample ({len(logits)} "
                         f"given): lower splits or score more samples")
    score = isc_features_to_metric(logits.detach().cpu(), splits=splits, shuffle=True, rng_seed=seed)
    return (torch.tensor(score["inception_score_mean"], dtype=torch.float64),
            torch.tensor(score["inception_score_std"], dtype=torch.float64))
