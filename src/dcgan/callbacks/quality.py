"""FID, KID and the other scores during training: how close generated images are to real ones,
every N epochs."""

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from dcgan.errors import UsageError
from dcgan.metrics.features import FeaturesUnavailable, extract
from dcgan.metrics.scores import check_metrics, scores
from dcgan.metrics.subsets import draw
from dcgan.model.sampling import equal_batches, to_uint8


class QualityMetrics(pl.Callback):
    """The chosen metrics (scores.METRICS; val/fid and val/kid by default) every `every_n_epochs`
    epochs (0: never) and after the last one: `num_fake` images of G (the averaged G when
    model.ema_decay is set), from latents that stay the same all run, against `num_real`
    training images, in the feature space that `features()` builds (Inception, or the digit
    classifier). If it cannot be built here, one warning says why and training goes on without.
    Under DDP each rank passes its share of the images through the extractor, and every rank
    scores all of their features."""

    def __init__(
        self,
        features: Callable[[], nn.Module],
        every_n_epochs: int = 1,
        num_fake: int = 2048,
        num_real: int = 2048,
        kid_subset_size: int = 100,
        batch_size: int = 250,
        metrics: list[str] = ("fid", "kid"),
    ):
        if kid_subset_size > num_fake:
            raise UsageError(f"kid_subset_size={kid_subset_size} must be at most num_fake={num_fake}")
        check_metrics(metrics)
        self.features = features
        self.every_n_epochs = every_n_epochs
        self.num_fake = num_fake
        self.num_real = num_real
        self.kid_subset_size = kid_subset_size
        self.batch_size = batch_size
        self.metrics = list(metrics)
        self.extractor: nn.Module | None = None
        self.unavailable: str | None = None  # why the metrics cannot be computed here, if so

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Rank 0 builds first (a download or a training, written once), the others then read it;
        # all ranks agree on whether there are metrics, or the others would wait in the gather.
        failure = self._build(pl_module) if trainer.is_global_zero else None
        failure = trainer.strategy.broadcast(failure)
        if failure is None and not trainer.is_global_zero:
            failure = self._build(pl_module)
        if failure is not None:
            self.extractor, self.unavailable = None, failure
            names = [f"val/{name}" for name in self.metrics]
            shown = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
            rank_zero_warn(f"{failure}. Training goes on without {shown}.")
            return
        if "is" in self.metrics and not hasattr(self.extractor, "logits"):  # on every rank alike
            raise UsageError("callbacks.quality.metrics: is (the Inception Score) needs class logits, which "
                             f"{type(self.extractor).__name__} does not give: leave is out, or use Inception's features")
        datamodule = trainer.datamodule
        count = min(self.num_real, len(datamodule.dataset))
        count -= count % trainer.world_size  # equal shares: the gather needs them
        chosen = draw(len(datamodule.dataset), count, seed=0)
        mine = chosen[trainer.global_rank :: trainer.world_size]  # this rank's share
        features = [extract(self.extractor, datamodule.images_at(batch).to(pl_module.device))[0]
                    for batch in mine.split(self.batch_size)]
        self.real = gathered(trainer, torch.cat(features))
        self.real_labels = None
        if "intra_fid" in self.metrics:
            if not pl_module.hparams.get("num_classes"):
                raise UsageError("callbacks.quality.metrics: intra_fid is for class-conditional models (data.labels=true)")
            self.real_labels = gathered(trainer, datamodule.labels_at(mine).to(pl_module.device))

    def _build(self, pl_module: pl.LightningModule) -> str | None:
        """Build the feature extractor; the reason it cannot be built here, if so."""
        try:
            self.extractor = self.features().to(pl_module.device)
        except FeaturesUnavailable as error:
            return str(error)
        return None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epochs = trainer.current_epoch + 1
        scheduled = self.every_n_epochs > 0 and epochs % self.every_n_epochs == 0
        if self.extractor is None or not (scheduled or epochs == trainer.max_epochs):  # the last: the final metric
            return
        latents = torch.Generator(pl_module.device).manual_seed(1 + trainer.global_rank)  # the same every time
        share = self.num_fake // trainer.world_size
        classes = pl_module.hparams.get("num_classes", 0)
        features, logits, labels, done = [], [], [], 0
        for size in equal_batches(share, self.batch_size):  # G normalises each batch with its own statistics
            z = torch.randn(size, pl_module.hparams.nz, 1, 1, device=pl_module.device, generator=latents)
            classes_of = (torch.arange(done, done + size, device=pl_module.device) % classes) if classes else None
            with torch.no_grad():  # class-conditional: every class equally often
                batch_features, batch_logits = extract(self.extractor, to_uint8(pl_module(z, classes_of)),
                                                       logits="is" in self.metrics)
            features.append(batch_features)
            logits.append(batch_logits)
            labels.append(classes_of)
            done += size
        fake = gathered(trainer, torch.cat(features))
        fake_logits = gathered(trainer, torch.cat(logits)) if "is" in self.metrics else None
        fake_labels = gathered(trainer, torch.cat(labels)) if classes and "intra_fid" in self.metrics else None
        values = scores(self.metrics, self.real, fake, fake_logits, self.real_labels, fake_labels,
                        kid_subset_size=self.kid_subset_size)
        # The same on every rank already; sync_dist is what Lightning asks of epoch-level values under DDP
        pl_module.log_dict({f"val/{name}": value for name, value in values.items()}, sync_dist=True)


def gathered(trainer: pl.Trainer, values: Tensor) -> Tensor:
    """Every rank's values (N, ...) of equal shape, concatenated in rank order."""
    if trainer.world_size == 1:
        return values
    return trainer.strategy.all_gather(values).flatten(0, 1)
