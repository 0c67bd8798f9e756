"""The GAN system: owns G and D and runs the seed's D-then-G update by manual optimization."""

import copy
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from dcgan.errors import TrainingDiverged, UsageError
from dcgan.losses import discriminator_loss, generator_loss
from dcgan.networks import Discriminator, Generator, batch_statistics
from dcgan.sampler import derived_seed

NUM_FIXED = 64  # fixed latents behind the progress grids: an 8x8 grid, as in the seed
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")  # the others replay CUDA graphs (see __init__)


class DCGAN(pl.LightningModule):
    """DCGAN trained as in the PyTorch tutorial. The grids' latents (fixed_noise, fixed_endpoints)
    are buffers, so checkpoints keep them."""

    def __init__(
        self,
        nz: int = 100,
        ngf: int = 64,
        ndf: int = 64,
        channels: int = 3,
        image_size: int = 64,
        lr: float = 2e-4,
        beta1: float = 0.5,
        ema_decay: float | None = None,
        channels_last: bool | None = None,
        compile: bool | str = False,
    ):
        """ema_decay: keep an exponential moving average of G's weights (e.g. 0.999) and sample
        from it; None trains and samples exactly as the seed. channels_last: NHWC weights and
        batches; None: on CPU only, where it measured faster (on an H200 it was slower; README,
        Performance). compile: torch.compile G and D for training; a string picks its mode."""
        for name, value in (("nz", nz), ("ngf", ngf), ("ndf", ndf)):
            if value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value}")
        if not lr > 0:
            raise UsageError(f"lr must be positive, e.g. 2e-4, got {lr}")
        if not 0 <= beta1 < 1:
            raise UsageError(f"beta1 must be in [0, 1), e.g. 0.5, got {beta1}")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise UsageError(f"ema_decay={ema_decay} must be in (0, 1), e.g. 0.999, or null for none")
        if isinstance(compile, str) and compile not in COMPILE_MODES:
            raise UsageError(
                f"compile={compile!r} is not a mode that works here: true, false or one of {', '.join(COMPILE_MODES)} "
                "(reduce-overhead and max-autotune replay CUDA graphs, which cannot run D twice before its backward)"
            )
        super().__init__()
        self.save_hyperparameters(logger=False)  # callbacks.HParams logs them, with the final metrics
        self.automatic_optimization = False
        self.generator = Generator(nz, ngf, channels, image_size)
        self.discriminator = Discriminator(ndf, channels, image_size)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if ema_decay else None
        self.memory_format = torch.contiguous_format  # chosen in configure_model
        self.register_buffer("fixed_noise", torch.randn(NUM_FIXED, nz, 1, 1))
        self.register_buffer("fixed_endpoints", torch.randn(8, 2, nz))  # (rows, 2, nz): interpolation grids
        self.distribute(None)

    @staticmethod
    def read_checkpoint(path: str | Path) -> dict:
        """A checkpoint of this template, on the CPU whatever it trained on, read without running
        pickled code (weights_only); anything else is a one-line UsageError."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise UsageError(f"ckpt_path={path} does not exist: pass a .ckpt from a run's checkpoints/")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # not a torch file, or one that needs code to load
            raise UsageError(f"ckpt_path={path} is not a checkpoint of this template ({type(error).__name__})") from None
        hparams, state = checkpoint.get("hyper_parameters"), checkpoint.get("state_dict")
        if not isinstance(hparams, dict) or not isinstance(state, dict) or "generator.main.0.weight" not in state:
            raise UsageError(f"ckpt_path={path} is not a checkpoint of this template: it holds no DCGAN generator")
        return checkpoint

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "DCGAN":
        """The trained system a checkpoint holds (see read_checkpoint), on the CPU."""
        checkpoint = cls.read_checkpoint(path)
        model = cls(**{**checkpoint["hyper_parameters"], "compile": False})
        model.load_state_dict(checkpoint["state_dict"])
        return model

    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None) -> None:
        """Train through wrap(G) and wrap(D), e.g. one DistributedDataParallel each (None: the
        plain networks). Kept outside the module tree: checkpoint keys don't change."""
        self._wrap = wrap
        self._train_nets: tuple[nn.Module, nn.Module, nn.Module] | None = None

    def train_nets(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """(G, D, plain D) as the training step calls them: wrapped and compiled as asked. Built
        at the first step, so that neither DDP nor torch.compile objects are ever pickled."""
        if self._train_nets is None:
            nets = (self.generator, self.discriminator)
            if self._wrap is not None:
                nets = tuple(self._wrap(net) for net in nets)
            nets = (*nets, self.discriminator)
            if self.hparams.compile:
                mode = None if self.hparams.compile is True else self.hparams.compile
                nets = tuple(torch.compile(net, mode=mode) for net in nets)
            self._train_nets = nets
        return self._train_nets

    def configure_model(self) -> None:
        # Runs before the optimizers and any checkpoint state exist, once the device is known.
        channels_last = self.hparams.channels_last
        if channels_last is None:
            channels_last = self.trainer.strategy.root_device.type == "cpu"
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def forward(self, z: Tensor) -> Tensor:
        """Images (B, C, S, S) in [-1, 1] from latents (B, nz, 1, 1): the averaged G when there is
        one, normalised with the batch's own statistics as in the seed, its state untouched."""
        generator = self.generator_ema or self.generator
        with batch_statistics(generator):
            return generator(z)

    @property
    def iteration(self) -> int:
        """Iterations finished, each one D and one G update (global_step counts both steps)."""
        return self.global_step // 2

    def on_fit_start(self) -> None:
        self._latent_rng = torch.Generator(self.device)
        self._seed = torch.initial_seed()  # the run's seed (seed_everything)

    def sample_latents(self, n: int) -> Tensor:
        """(n, nz, 1, 1) latents drawn from a stream seeded by (seed, rank, iteration): every rank
        gets its own fake batch (one global seed would give them all the same), and a resumed run
        draws exactly the latents an uninterrupted one would have."""
        self._latent_rng.manual_seed(derived_seed(self._seed, self.global_rank, self.iteration))
        return torch.randn(n, self.hparams.nz, 1, 1, device=self.device, generator=self._latent_rng)

    def training_step(self, real: Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        generator, discriminator, plain_discriminator = self.train_nets()
        real = real.contiguous(memory_format=self.memory_format)
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
        gen_logits = plain_discriminator(fake)
        loss_g = generator_loss(gen_logits)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.discriminator.requires_grad_(True)
        if self.generator_ema is not None:
            self._update_ema()

        # Lightning writes logs every trainer.log_every_n_steps iterations and logging costs a
        # third of a small step, so log those iterations (and each epoch's last, for the final
        # metrics) only, and check for divergence there. Tensors, not numbers: no host sync in
        # between; callbacks.ProgressBar reads them.
        every, last_of_epoch = self.trainer.log_every_n_steps, batch_idx + 1 == self.trainer.num_training_batches
        if (every and self.iteration % every == 0) or last_of_epoch:  # this one included
            finite = bool(torch.isfinite(loss_d + loss_g))  # a host sync, which logging makes anyway
            if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):  # every rank stops together
                raise TrainingDiverged(
                    f"training diverged at iteration {self.iteration - 1}: train/loss_d={loss_d.item():.4g}, "
                    f"train/loss_g={loss_g.item():.4g}. Checkpoints written before are intact; "
                    "a lower model.lr or another seed may help"
                )
            self.log_dict(
                {
                    "train/loss_d": loss_d,
                    "train/loss_g": loss_g,
                    "train/d_x": torch.sigmoid(real_logits).mean(),
                    "train/d_g_z1": torch.sigmoid(fake_logits).mean(),
                    "train/d_g_z2": torch.sigmoid(gen_logits).mean(),
                }
            )

    @torch.no_grad()
    def _update_ema(self) -> None:
        # One fused lerp over all weights, on the device (torch's AveragedModel reads a counter
        # back to the host every step); BatchNorm statistics are copied. The decay ramps up as in
        # TensorFlow's ExponentialMovingAverage, so that the average does not hold on to the
        # initial weights through a short run.
        decay = min(self.hparams.ema_decay, (1 + self.iteration) / (10 + self.iteration))
        ema, live = list(self.generator_ema.parameters()), list(self.generator.parameters())
        torch._foreach_lerp_(ema, live, 1 - decay)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # Measured (README, Performance): fused Adam is fastest on CUDA, the multi-tensor foreach
        # one on CPU (fused and the default per-parameter loop are slower there).
        kernel = {"fused": True} if self.device.type == "cuda" else {"foreach": True}
        options = {"lr": self.hparams.lr, "betas": (self.hparams.beta1, 0.999), **kernel}
        return [
            torch.optim.Adam(self.generator.parameters(), **options),
            torch.optim.Adam(self.discriminator.parameters(), **options),
        ]
