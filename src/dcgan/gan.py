"""The GAN system: owns G and D and runs the seed's D-then-G update by manual optimization."""

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

import dcgan.parallel  # noqa: F401  registers the GAN-aware "ddp" that several devices use
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
        self.distribute(None)

    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None) -> None:
        """Train through wrap(G) and wrap(D), e.g. one DistributedDataParallel each (None: the
        plain networks). Kept in a tuple, outside the module tree: checkpoint keys don't change."""
        nets = (self.generator, self.discriminator)
        self._train_nets = nets if wrap is None else tuple(wrap(net) for net in nets)

    def forward(self, z: Tensor) -> Tensor:
        """Images (B, C, S, S) in [-1, 1] from latents (B, nz, 1, 1), normalised with the batch's
        own statistics as in the seed, leaving G's state untouched."""
        with batch_statistics(self.generator):
            return self.generator(z)

    def on_fit_start(self) -> None:
        self._latent_rng = torch.Generator(self.device)
        self._seed = torch.initial_seed()  # the run's seed (seed_everything)

    def sample_latents(self, n: int) -> Tensor:
        """(n, nz, 1, 1) latents drawn from a stream seeded by (seed, rank, iteration): every rank
        gets its own fake batch (one global seed would give them all the same), and a resumed run
        draws exactly the latents an uninterrupted one would have."""
        iteration = self.global_step // 2  # two optimizer steps per iteration
        self._latent_rng.manual_seed(hash((self._seed, self.global_rank, iteration)) % 2**63)
        return torch.randn(n, self.hparams.nz, 1, 1, device=self.device, generator=self._latent_rng)

    def training_step(self, real: Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        generator, discriminator = self._train_nets
        fake = generator(self.sample_latents(real.shape[0]))  # (B, C, S, S); once per step, as in the seed

        # (1) D: maximise log D(x) + log(1 - D(G(z))) on a real and a separate fake batch.
        real_logits = discriminator(real)
        fake_logits = discriminator(fake.detach())
        loss_d = discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()

        # (2) G: maximise log D(G(z)) on the same fake batch, through the updated D. D's weight
        # gradients are not needed here (the seed computes and discards them), so skip them, and
        # use the plain D: its DDP wrapper would wait for those gradients.
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
