"""The real side of an evaluation, computed once per dataset and protocol: the features (and
labels) of the real images, kept in a file named by everything its content depends on (the data,
the image size and channels, the feature network and its weights, the resize protocol, which
images and how many, whether labels are kept) beside a record of the data's state, so that changed
data is passed through the extractor again."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dcgan.files import replaced_atomically


def fingerprint(network: nn.Module) -> str:
    """A digest of a feature network's class (with the classes it builds on: a resize or a forward
    inherited from elsewhere changes the features too) and of every weight and buffer: features
    kept from other weights (another release, another digit classifier) are never read back."""
    digest = hashlib.sha1(" ".join(f"{c.__module__}.{c.__qualname__}" for c in type(network).__mro__).encode())
    for name, tensor in network.state_dict().items():
        digest.update(f"\n{name} {tuple(tensor.shape)} {tensor.dtype}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
    return digest.hexdigest()


def reference_features(compute: Callable[[], tuple[Tensor, Tensor | None]], cache_dir: str | Path | None,
                       key: dict[str, Any], state: str) -> tuple[Tensor, Tensor | None, str]:
    """(features, labels, where they came from) of the real images: read from the file in
    cache_dir that `key` names when its recorded state is `state`, else computed by `compute()`
    and kept there. key: everything the content depends on; its "data", "features", "resize"
    and "count" also make the file's name readable."""
    if cache_dir is None:
        return *compute(), "computed (no cache_dir to keep them in)"
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = f"{key['data']}-{key['features']}-{key['resize']}-{key['count']}-{digest}.pt"
    path = Path(cache_dir).expanduser() / name
    if path.exists():
        kept = torch.load(path, map_location="cpu", weights_only=True)
        if kept.get("state") == state and kept.get("key") == key:
            return kept["features"], kept["labels"], f"read from {path}"
    features, labels = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as partial:
        torch.save({"state": state, "key": key, "features": features.cpu(),
                    "labels": None if labels is None else labels.cpu()}, partial)
    return features, labels, f"computed and kept in {path}"
