"""The Inception Score (Salimans et al. 2016) of generated images, from the class logits their
features give (the extractor's `logits`): high when each image is confidently one class and the
images spread over many classes."""

import math

import torch
from torch import Tensor

from dcgan.errors import UsageError


def inception_score(logits: Tensor, splits: int = 10) -> tuple[Tensor, Tensor]:
    """(mean, std) over `splits` parts of exp(mean_x KL(p(y|x) || p(y))), p(y) the part's mean,
    from logits (N, K), in float64. The parts are consecutive in the given order, not shuffled:
    the same samples always give the same score, and samples from G are in random order already.
    Part i holds rows i*N//splits up to (i+1)*N//splits, as in torch-fidelity."""
    if not 0 < splits <= len(logits):
        raise UsageError(f"splits={splits} needs at least 1 and at most one part per sample ({len(logits)} "
                         f"given): lower splits or score more samples")
    log_p = logits.double().log_softmax(1)  # (N, K): float64, as torch-fidelity and the original code
    scores = []
    for part in log_p.tensor_split([i * len(logits) // splits for i in range(1, splits)]):
        # log p(y) from log p(y|x): a class no sample of the part gives any weight stays finite
        log_marginal = part.logsumexp(0) - math.log(len(part))  # (K,)
        kl = (part.exp() * (part - log_marginal)).sum(1)  # (n,)
        scores.append(kl.mean().exp())
    scores = torch.stack(scores)
    return scores.mean(), scores.std(correction=0)  # the spread over parts, as published (np.std)
