"""The real side of an evaluation, computed once per dataset and protocol: the features (and
labels) of the real images, kept in a file named by what they depend on (the data, the image
size and channels, the feature space, the resize protocol, how many images) beside a record of
the data's state, so that changed data is passed through the extractor again."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from dcgan.files import replaced_atomically


def reference_features(compute: Callable[[], tuple[Tensor, Tensor | None]], cache_dir: str | Path | None,
                       name: str, state: str) -> tuple[Tensor, Tensor | None, str]:
    """(features, labels, where they came from) of the real images: read from cache_dir/name.pt
    when its recorded state is `state`, else computed by `compute()` and kept there."""
    if cache_dir is None:
        return *compute(), "computed (no cache_dir to keep them in)"
    path = Path(cache_dir).expanduser() / f"{name}.pt"
    if path.exists():
        kept = torch.load(path, map_location="cpu", weights_only=True)
        if kept.get("state") == state:
            return kept["features"], kept["labels"], f"read from {path}"
    features, labels = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as partial:
        torch.save({"state": state, "features": features.cpu(), "labels": None if labels is None else labels.cpu()},
                   partial)
    return features, labels, f"computed and kept in {path}"
