"""FID and KID between generated and real images, in any feature space: each image passes through
the feature extractor once, and both metrics receive its features."""

import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


def match_channels(images: Tensor, channels: int) -> Tensor:
    """(B, C, H, W) -> (B, channels, H, W): grey repeated to RGB, or RGB averaged to grey."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    return images.float().mean(1, keepdim=True).round().to(images.dtype)


class GivenFeatures(nn.Module):
    """FID and KID receive features computed once, not images (no second pass through Inception)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


class FeatureDistance:
    """FID and KID (torchmetrics) between generated images and a fixed set of real ones, in the
    feature space of `extractor`: uint8 images (B, C, H, W) -> (B, extractor.num_features), in
    extractor.in_channels channels (others are converted). Each image passes through it once."""

    def __init__(self, extractor: nn.Module, kid_subset_size: int, device: torch.device | str = "cpu"):
        self.extractor = extractor
        given = GivenFeatures(extractor.num_features)
        self.fid = FrechetInceptionDistance(feature=given, reset_real_features=False).to(device)
        with warnings.catch_warnings():  # "KID keeps all features": num_real + num_fake rows, here
            warnings.simplefilter("ignore")
            self.kid = KernelInceptionDistance(feature=given, subset_size=kid_subset_size,
                                               reset_real_features=False).to(device)

    @torch.no_grad()
    def update(self, images: Tensor, real: bool) -> None:
        features = self.extractor(match_channels(images, self.extractor.in_channels)).double()
        self.fid.update(features, real=real)
        self.kid.update(features, real=real)

    def compute(self) -> tuple[Tensor, Tensor]:
        """(FID, mean KID) of the generated images given since the last compute; under DDP,
        over every rank's. The real side is kept, the generated side forgotten."""
        fid, (kid, _) = self.fid.compute(), self.kid.compute()
        self.fid.reset()
        self.kid.reset()
        return fid, kid
