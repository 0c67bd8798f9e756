"""The GAN system: owns G and D and runs the seed's D-then-G update by manual optimization; the
loss, its regularizers and the update schedule are options, the seed's being the defaults."""

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from dcgan.errors import TrainingDiverged, UsageError
from dcgan.model import ema, schedule
from dcgan.model.ada import AdaptiveAugment
from dcgan.model.augment import DiffAugment
from dcgan.model.losses import LOSSES
from dcgan.model.networks.parts import build_networks
from dcgan.model.options import check_options
from dcgan.model.regularizers import Penalties
from dcgan.model.runtime import adam, loss_scale, memory_format, training_nets
from dcgan.model.sampling import generate, interpolation_latents, sampling_mode, split
from dcgan.streams import derived_seed

TUTORIAL = "dcgan.model.networks.dcgan"  # the tutorial's networks, the default G and D
NUM_FIXED = 64  # fixed latents behind the progress grids: an 8x8 grid, as in the seed


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
        loss: str = "ns",
        r1_gamma: float = 0.0,
        r1_interval: int = 1,
        gp_lambda: float = 0.0,
        n_critic: int = 1,
        g_fresh_latents: bool = False,
        lr: float = 2e-4,
        lr_g: float | None = None,
        lr_d: float | None = None,
        beta1: float = 0.5,
        beta2: float = 0.999,
        lr_decay: Literal["none", "linear"] = "none",
        d_norm: Literal["batch", "none", "layer", "instance"] = "batch",
        spectral_norm: Literal["none", "d", "g", "both"] = "none",
        generator: dict[str, Any] | None = None,
        discriminator: dict[str, Any] | None = None,
        num_classes: int = 0,
        class_names: list[str] | None = None,
        fake_classes: Literal["data", "uniform"] = "data",
        augment: list[str] | None = None,
        ada_target: float | None = None,
        ada_interval: int = 4,
        ada_kimg: float = 500,
        ada_p: float = 0.0,
        ada_pipeline: str = "bgc",
        ema_decay: float | None = None,
        channels_last: bool | None = None,
        compile: bool | str = False,
    ):
        """ngf, ndf, d_norm: the tutorial's networks' widths and D's normalisation. generator,
        discriminator: {"_target_": class, **arguments} of other networks (None: the tutorial's);
        what was built is kept in the hyperparameters, so checkpoints rebuild it. loss: one of
        losses.LOSSES. r1_gamma, r1_interval, gp_lambda: the R1 and WGAN-GP penalties
        (regularizers.py; 0: none). n_critic: D updates per G update, each on its own real batch.
        g_fresh_latents: G's update on latents of its own (False: on D's last fake batch, as the
        seed). lr_g, lr_d: each network's Adam rate (None: lr); lr_decay: both over the run
        (schedule.py). spectral_norm: on D, G or both.
        num_classes: train class-conditional G and D (the data's classes, from train.py; 0: not);
        class_names: what each label is, in order (recorded: checkpoints say what they learned).
        fake_classes: the classes of D's fake images: "data", those of the real batch beside them
        (the data's class frequencies, and a gradient penalty's point between a real and a fake
        image stays within one class, as in Gulrajani et al.'s conditional code), or "uniform".
        augment: DiffAugment policies applied to every image D sees (augment.py). ada_target:
        ADA (ada.py; the paper's 0.6; None: off): ada_pipeline's transforms (ADA's "bgc" or
        another group of ada_pipeline.py; "diffaugment": the augment policies, None meaning all)
        each applied with a probability p, adapted toward r_t = ada_target every ada_interval
        iterations, at the speed of ada_kimg thousand images from 0 to 1, starting from ada_p.
        ema_decay: keep an exponential moving average of G's weights (e.g. 0.999) and sample
        from it; None trains and samples exactly as the seed. channels_last: NHWC weights and
        batches; None: on CPU only, where it measured faster (on an H200 it was slower; README,
        Performance). compile: torch.compile G and D for training; a string picks its mode."""
        check_options(locals())
        super().__init__()
        self.save_hyperparameters(logger=False)  # callbacks.HParams logs them, with the final metrics
        self.automatic_optimization = False
        specs = {  # what is built, and kept in the hyperparameters so that a checkpoint rebuilds it
            "generator": generator or {"_target_": f"{TUTORIAL}.Generator", "nz": nz, "ngf": ngf,
                                       "channels": channels, "image_size": image_size},
            "discriminator": discriminator or {"_target_": f"{TUTORIAL}.Discriminator", "ndf": ndf,
                                               "channels": channels, "image_size": image_size, "norm": d_norm},
        }
        specs, self.generator, self.discriminator = build_networks(specs, nz, channels, image_size, num_classes,
                                                                   class_names, spectral_norm)
        self.hparams.update(specs)
        self.loss = LOSSES[loss]()
        if ada_target is not None:  # a submodule: p is in the state_dict, so checkpoints keep it
            self.augment = AdaptiveAugment(ada_pipeline, augment, ada_target, ada_interval, ada_kimg, ada_p)
        else:
            self.augment = DiffAugment(augment) if augment else None
        self.penalties = Penalties(r1_gamma, r1_interval, gp_lambda)
        self.generator_ema = ema.frozen_copy(self.generator) if ema_decay else None
        self.memory_format = torch.contiguous_format  # chosen in configure_model
        self.register_buffer("fixed_noise", torch.randn(NUM_FIXED, nz, 1, 1))
        self.register_buffer("fixed_endpoints", torch.randn(8, 2, nz))  # (rows, 2, nz): interpolation grids
        self.distribute(None)

    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None) -> None:
        """Train through wrap(G) and wrap(D), e.g. one DistributedDataParallel each (None: the
        plain networks). Kept outside the module tree: checkpoint keys don't change."""
        self._wrap = wrap
        self._train_nets: tuple[nn.Module, nn.Module, nn.Module] | None = None

    def train_nets(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """(G, D, plain D) as the training step calls them: wrapped and compiled as asked. Built
        at the first step, so that neither DDP nor torch.compile objects are ever pickled."""
        if self._train_nets is None:
            self._train_nets = training_nets(self.generator, self.discriminator, self._wrap, self.hparams.compile)
        return self._train_nets

    def configure_model(self) -> None:
        # Runs before the optimizers and any checkpoint state exist, once the device is known.
        self.memory_format = memory_format(self.hparams.channels_last, self.trainer.strategy.root_device)
        self.to(memory_format=self.memory_format)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images (B, C, S, S) in [-1, 1] from latents (B, nz, 1, 1) (and, class-conditional,
        labels (B,)): the averaged G when there is one, normalised with the batch's own
        statistics as in the seed, its state untouched."""
        generator = self.generator_ema or self.generator
        with sampling_mode(generator):
            return generate(generator, z, labels)

    def grid(self) -> tuple[Tensor, int]:
        """The fixed-noise grid and its images per row: 8x8 of G(fixed_noise); class-conditional,
        one row per class (the first 16), each with the same 8 latents."""
        if not self.hparams.num_classes:
            return self(self.fixed_noise), 8
        rows = min(self.hparams.num_classes, 16)
        labels = torch.arange(rows, device=self.device).repeat_interleave(8)
        return self(self.fixed_noise[:8].repeat(rows, 1, 1, 1), labels), 8

    def interpolation(self, steps: int = 8) -> Tensor:
        """Spherical paths between the fixed endpoints, `steps` images a row; class-conditional,
        row r in class r (modulo the classes)."""
        z = interpolation_latents(self.fixed_endpoints, steps)
        classes = self.hparams.num_classes
        labels = (torch.arange(len(z), device=self.device) // steps) % classes if classes else None
        return self(z, labels)

    @property
    def iteration(self) -> int:
        """Iterations finished, each n_critic D updates and one G update (global_step counts
        every optimizer step, n_critic + 1 per iteration)."""
        return self.global_step // (self.hparams.n_critic + 1)

    def on_fit_start(self) -> None:
        self._latent_rng = torch.Generator(self.device)
        self._seed = torch.initial_seed()  # the run's seed (seed_everything)
        self.penalties.warn_of_batchnorm(self.discriminator)

    def on_train_start(self) -> None:
        # The decay's length needs the loader's, which configure_optimizers runs too early to know.
        self._schedulers = schedule.start(self.lr_schedulers(), self.trainer, self.hparams.n_critic)

    def sample_latents(self, n: int) -> Tensor:
        """(n, nz, 1, 1) latents drawn from a stream seeded by (seed, rank, iteration): every rank
        gets its own fake batch (one global seed would give them all the same), and a resumed run
        draws exactly the latents an uninterrupted one would have."""
        self._latent_rng.manual_seed(derived_seed(self._seed, self.global_rank, self.iteration))
        return torch.randn(n, self.hparams.nz, 1, 1, device=self.device, generator=self._latent_rng)

    def fake_labels(self, real_labels: Tensor | None) -> Tensor | None:
        """(B,) classes for the fake images beside real ones of real_labels (None: unconditional):
        the same (model.fake_classes=data), or uniform draws from the latents' stream."""
        if real_labels is None or self.hparams.fake_classes == "data":
            return real_labels
        return torch.randint(self.hparams.num_classes, real_labels.shape, device=self.device, generator=self._latent_rng)

    def _judge(self, discriminator: nn.Module, images: Tensor, labels: Tensor | None) -> Tensor:
        """D's logits for images as D sees them: augmented (model.augment), with their labels."""
        if self.augment is not None:
            images = self.augment(images, self._latent_rng)
        return discriminator(images) if labels is None else discriminator(images, labels)

    def training_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)  # labels: (B,) classes
        opt_g, opt_d = self.optimizers()
        generator, discriminator, plain_discriminator = self.train_nets()
        iteration, n_critic = self.iteration, self.hparams.n_critic
        if len(real) % n_critic:  # a DataModule of the user's own that hands a short step
            raise UsageError(f"a training step got {len(real)} real images for model.n_critic={n_critic} D updates: "
                             "each step must hold n_critic whole batches (drop a short last one)")
        reals = real.contiguous(memory_format=self.memory_format).chunk(n_critic)  # (B, C, S, S) per D update
        latents = self.sample_latents(real.shape[0]).chunk(n_critic)
        real_labels = split(labels, n_critic)
        fake_labels = split(self.fake_labels(labels), n_critic)
        scale = loss_scale(self.trainer, self.device) if self.penalties else None  # for the penalties' gradients

        # (1) D, n_critic times (the seed: once), on a real batch and a separate fake batch. G runs
        # once per D update, with autograd only the last time: G's update reuses that fake batch
        # (unless it draws its own, model.g_fresh_latents).
        fresh = self.hparams.g_fresh_latents
        for k in range(n_critic):
            with torch.set_grad_enabled(k == n_critic - 1 and not fresh):
                fake = generate(generator, latents[k], fake_labels[k])  # (B, C, S, S)
            real_logits = self._judge(discriminator, reals[k], real_labels[k])
            if isinstance(self.augment, AdaptiveAugment):
                self.augment.observe(real_logits)
            fake_logits = self._judge(discriminator, fake.detach(), fake_labels[k])
            loss_d = self.loss.discriminator(real_logits, fake_logits)
            # The penalties judge real images (and points between real and fake) by the plain, eager
            # D: their double backward cannot run through torch.compile's graphs, and DDP's
            # wrapper would reduce before their gradients are in (regularizers.py).
            judge = partial(self._judge, self.discriminator, labels=real_labels[k])
            penalty = self.penalties(judge, reals[k], fake, iteration, self._latent_rng, scale)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d + penalty)
            opt_d.step()

        # (2) G, on the last fake batch, through the updated D; or on latents of its own, drawn
        # on from this iteration's stream (SN-GAN's, WGAN-GP's and Mimicry's code draw new ones).
        # D's weight gradients are not needed here (the seed computes and discards them), so skip
        # them, and use the plain D: its DDP wrapper would wait for those gradients.
        if fresh:
            z = torch.randn(latents[-1].shape, device=self.device, generator=self._latent_rng)
            fake = generate(generator, z, fake_labels[-1])
        self.discriminator.requires_grad_(False)
        gen_logits = self._judge(plain_discriminator, fake, fake_labels[-1])
        loss_g = self.loss.generator(gen_logits)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.discriminator.requires_grad_(True)
        for scheduler in self._schedulers:  # once per G update (model.lr_decay)
            scheduler.step()
        if self.generator_ema is not None:
            ema.update(self.generator_ema, self.generator, self.hparams.ema_decay, self.iteration)
        if isinstance(self.augment, AdaptiveAugment):  # all ranks' r_t: every rank keeps the same p
            self.augment.adjust(self.iteration, partial(self.trainer.strategy.reduce, reduce_op="sum"))

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
            statistics = self.loss.statistics(real_logits, fake_logits, gen_logits)
            if isinstance(self.augment, AdaptiveAugment):
                statistics.update(ada_p=self.augment.p, ada_rt=self.augment.rt)
            self.log_dict({"train/loss_d": loss_d, "train/loss_g": loss_g, **self.penalties.latest,
                           **{f"train/{name}": value for name, value in statistics.items()}})

    def configure_optimizers(self) -> list[torch.optim.Optimizer] | tuple[list, list]:
        hp = self.hparams
        optimizers = [adam(net.parameters(), lr, (hp.beta1, hp.beta2), self.device)
                      for net, lr in ((self.generator, hp.lr_g or hp.lr), (self.discriminator, hp.lr_d or hp.lr))]
        # Returned, schedulers are in Lightning's checkpoints and resumed with them; training_step steps them.
        schedulers = schedule.build(hp.lr_decay, optimizers)
        return (optimizers, schedulers) if schedulers else optimizers

