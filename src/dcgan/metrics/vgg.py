"""VGG-16's fc2 features: the 4096 outputs of its second fully connected layer after their ReLU,
the feature space in which Kynkaanniemi et al. (2019) measure improved precision and recall (their
code embeds images with VGG-16 there, not with Inception). Weights: torchvision's ImageNet ones
(VGG16_Weights.IMAGENET1K_V1), never fetched at run time: read from torch's hub cache, where
torchvision keeps them, or from a file given. Images reach the network as torch-fidelity 0.4's
VGG-16 takes them (the PyTorch implementation of these metrics; the authors' own resize is inside
their pickled TensorFlow network): TensorFlow 1's bilinear resize to 224x224, then ImageNet's
mean and standard deviation, which torchvision's weights were trained with."""

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from dcgan.metrics.features import FeaturesUnavailable

VGG16_URL = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url  # .../vgg16-397923af.pth, 553 MB
MEAN = (0.485, 0.456, 0.406)  # ImageNet's, per RGB channel, as torchvision trained the weights
STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """torchvision's VGG-16 up to fc2 and its ReLU: uint8 images (B, 3, H, W) -> (B, 4096). No
    class logits, so no Inception Score in this space."""

    num_features = 4096
    in_channels = 3
    input_size = 224  # what it resizes images to (metrics/resize.py's protocols)

    def __init__(self, vgg: nn.Module):
        super().__init__()
        self.features, self.avgpool = vgg.features, vgg.avgpool
        self.classifier = vgg.classifier[:5]  # fc1, ReLU, Dropout (off in eval), fc2, ReLU; not fc3
        self.register_buffer("mean", 255 * torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", 255 * torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(self.input_size, self.input_size),
                                                      align_corners=False)  # (B, 3, 224, 224) in [0, 255]
        x = self.features((x - self.mean) / self.std)  # (B, 512, 7, 7)
        return self.classifier(self.avgpool(x).flatten(1))  # (B, 4096)


def vgg16(weights: str | None = None) -> VGG16Features:
    """VGG-16's fc2 features, its weights read from `weights` (a state dict of torchvision's
    vgg16) or from torch's hub cache, where torchvision keeps VGG16_Weights.IMAGENET1K_V1."""
    path = Path(weights).expanduser() if weights else Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_URL).name
    if not path.is_file():
        raise FeaturesUnavailable(f"VGG-16's features need torchvision's ImageNet weights, not found at {path}: "
                                  f"download {VGG16_URL} to {path}, or set features.weights=<that file>")
    with torch.device("meta"):  # no random initialisation of 138M weights, all replaced next
        vgg = torchvision.models.vgg16(weights=None)
    try:
        vgg.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), assign=True)
    except (RuntimeError, KeyError, TypeError, AttributeError) as error:  # not a state dict, or not VGG-16's
        reason = str(error).strip().splitlines()[0]
        raise FeaturesUnavailable(f"{path} is not torchvision's VGG-16 weights ({reason}): replace it with "
                                  f"{VGG16_URL}") from None
    return VGG16Features(vgg).eval().requires_grad_(False)
