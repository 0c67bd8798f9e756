"""Adaptive discriminator augmentation, ADA (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"): each augmentation applied to each image D sees with probability p,
and p adapted to how much D overfits. The augmentations are ADA's own pipeline (ada_pipeline.py;
'bgc', the paper's, by default), or, with pipeline="diffaugment", DiffAugment's operations
(augment.py), each applied with probability p as a whole.

The overfitting heuristic is r_t = E[sign(D(real))] over the real images of `interval` D
updates (all ranks'): near 0 while D cannot tell training images from others, towards 1 as it
memorises them. Every `interval` iterations p moves by sign(r_t - target) * images / (kimg *
1000): the paper's speed, at which p can go from 0 to 1 in `kimg` thousand real images (500).

p and the running sums are buffers: they are in checkpoints, so a resumed run goes on with the
p it had (StyleGAN2-ADA's resume starts again from its initial p), and they stay on the device:
no step reads them back to the host.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from dcgan.model.ada_pipeline import PIPELINES, AdaPipeline
from dcgan.model.augment import POLICIES, DiffAugment

ADA_PIPELINES = (*PIPELINES, "diffaugment")


class AdaptiveAugment(nn.Module):
    """pipeline: one of ADA_PIPELINES; policies: with "diffaugment", augment.py's, in order (None:
    all of them); target: r_t's target (0.6, the paper's); interval: iterations between
    adjustments (4); kimg: thousands of real images for p to go from 0 to 1 (500); p: where p
    starts."""

    def __init__(self, pipeline: str = "bgc", policies: list[str] | None = None, target: float = 0.6,
                 interval: int = 4, kimg: float = 500, p: float = 0.0):
        super().__init__()
        if pipeline == "diffaugment":
            self.pipeline, self.operations = None, DiffAugment(list(policies or POLICIES)).operations
        else:  # options.py has checked that no policies come with it
            self.pipeline, self.operations = AdaPipeline(PIPELINES[pipeline]), []
        self.target, self.interval, self.kimg = target, interval, kimg
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("rt", torch.tensor(0.0))  # the latest r_t, for the logs
        self.register_buffer("signs", torch.zeros(2))  # sum of sign(D(real)), and how many, since the last adjustment

    def forward(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """images (B, C, H, W), each transform (or DiffAugment operation) applied to each image
        with probability p."""
        if self.pipeline is not None:
            return self.pipeline(images, self.p, generator)
        for operation in self.operations:
            chosen = torch.rand(images.shape[0], 1, 1, 1, device=images.device, generator=generator) < self.p
            images = torch.where(chosen, operation(images, generator), images)
        return images

    @torch.no_grad()
    def observe(self, real_logits: Tensor) -> None:
        """Count D's logits on (augmented) real images into r_t."""
        self.signs += torch.stack([real_logits.detach().float().sign().sum(),
                                   torch.tensor(float(real_logits.numel()), device=real_logits.device)])

    @torch.no_grad()
    def adjust(self, iteration: int, reduce: Callable[[Tensor], Tensor]) -> None:
        """After iteration `iteration` (counted from 1): every `interval`-th, move p from the sums
        since the last adjustment, summed over ranks by `reduce`, and start them again."""
        if iteration % self.interval:
            return
        signs, count = reduce(self.signs.clone()).unbind()
        self.rt.copy_(signs / count.clamp(min=1))
        self.p.add_(torch.sign(self.rt - self.target) * count / (self.kimg * 1000)).clamp_(0, 1)
        self.signs.zero_()
