"""How images reach a feature extractor's input size: the resize protocol, which FID depends on
as much as on the samples (clean-fid, Parmar et al. 2022: the same images score several points
apart under different resizers).

- "torch-fidelity": the images as they are; the extractor resizes them itself (Inception:
  torch-fidelity's own forward, the bilinear resize of TensorFlow 1 without antialiasing, as the
  original FID code; torchmetrics >= 1.9 resizes with antialiasing, 12 grey levels apart on
  average from 32x32, and is not used).
- "clean-fid": each channel resized with PIL's bicubic filter in floating point to the
  extractor's input size first, as clean-fid does (then rounded to 8 bits, which the extractor
  takes: within half a grey level of clean-fid's float input).
"""

import numpy as np
import torch
from PIL import Image
from torch import Tensor

PROTOCOLS = ("torch-fidelity", "clean-fid")


def resized(images: Tensor, protocol: str, size: int) -> Tensor:
    """uint8 images (B, C, H, W) as the protocol hands them to an extractor that reads size x size."""
    if protocol == "torch-fidelity" or images.shape[-1] == size:
        return images
    pixels = images.cpu().numpy().astype(np.float32)
    out = np.empty((*pixels.shape[:2], size, size), np.float32)
    for b, image in enumerate(pixels):
        for c, channel in enumerate(image):
            out[b, c] = np.asarray(Image.fromarray(channel).resize((size, size), Image.Resampling.BICUBIC))
    return torch.from_numpy(out.clip(0, 255).round().astype(np.uint8)).to(images.device)
