"""The GAN system: owns G and D and runs the seed's D-then-G update by manual optimization."""

import pytorch_lightning as pl
import torch
from torch import Tensor

from dcgan.losses import discriminator_loss, generator_loss
from dcgan.networks import Discriminator, Generator, batch_statistics

NUM_FIXED = 64  # fixed latents behind the progress grids: an 8x8 grid, as in the seed


class DCGAN(pl.LightningModule):
    """DCGAN trained as in the PyTorch tutorial; ``fixed_noise`` is a buffer, so checkpoints keep it."""

    def __init__(
        self,
        nz: int = 100,
        ngf: int = 64,
        ndf: int = 64,
        channels: int = 3,
        image_size: int = 64,
        lr: float = 2e-4,
        beta1: float = 0.5,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = Generator(nz, ngf, channels, image_size)
        self.discriminator = Discriminator(ndf, channels, image_size)
        self.register_buffer("fixed_noise", torch.randn(NUM_FIXED, nz, 1, 1))

    def forward(self, z: Tensor) -> Tensor:
        """Images (B, C, S, S) in [-1, 1] from latents (B, nz, 1, 1), normalised with the batch's
        own statistics as in the seed, leaving G's state untouched."""
        with batch_statistics(self.generator):
            return self.generator(z)

    def training_step(self, real: Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.hparams.nz, 1, 1, device=self.device)
        fake = self.generator(z)  # (B, C, S, S); G runs once per step, as in the seed

        # (1) D: maximise log D(x) + log(1 - D(G(z))) on a real and a separate fake batch.
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake.detach())
        loss_d = discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()

        # (2) G: maximise log D(G(z)) on the same fake batch, through the updated D. D's weight
        # gradients are not needed here (the seed computes and discards them), so skip them.
        self.discriminator.requires_grad_(False)
        gen_logits = self.discriminator(fake)
        loss_g = generator_loss(gen_logits)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.discriminator.requires_grad_(True)

        self.log_dict(
            {
                "train/loss_d": loss_d,
                "train/loss_g": loss_g,
                "train/d_x": torch.sigmoid(real_logits).mean(),
                "train/d_g_z1": torch.sigmoid(fake_logits).mean(),
                "train/d_g_z2": torch.sigmoid(gen_logits).mean(),
            },
            prog_bar=True,
        )

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        betas = (self.hparams.beta1, 0.999)
        return [
            torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=betas),
        ]
