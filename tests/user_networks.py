"""Networks of a user's own, outside the template: what model/generator= and model/discriminator=
can point at (their configs are in tests/conf/, found through hydra.searchpath)."""

from torch import Tensor, nn


class MLPGenerator(nn.Module):
    """Latents (B, nz, 1, 1) -> images (B, channels, size, size) in [-1, 1], through one hidden layer."""

    def __init__(self, nz: int, channels: int, image_size: int, hidden: int = 64, out_scale: float = 1.0):
        super().__init__()
        self.shape, self.out_scale = (channels, image_size, image_size), out_scale
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(nz, hidden), nn.ReLU(),
                                 nn.Linear(hidden, channels * image_size * image_size), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.shape) * self.out_scale  # out_scale > 1 breaks the contract


class MLPDiscriminator(nn.Module):
    """Images (B, channels, size, size) -> one logit per image (B,), or (B, 1) with flat=false."""

    def __init__(self, channels: int, image_size: int, hidden: int = 64, flat: bool = True):
        super().__init__()
        self.flat = flat
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size * image_size, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        logits = self.net(x)  # (B, 1)
        return logits.flatten() if self.flat else logits
