"""Callbacks the tests load through the config (+callbacks.probe=...), in every rank."""

import atexit
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


class RankProbe(pl.Callback):
    """Each rank writes what it saw to <dirpath>/rank<N>.json."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)
        self.batches: list[list[str]] = []
        self.shapes: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append([hashlib.md5(image.cpu().numpy().tobytes()).hexdigest() for image in batch])
        self.shapes.append(list(batch.shape))

    def on_train_end(self, trainer, pl_module):
        self.dirpath.mkdir(parents=True, exist_ok=True)
        report = {
            "world_size": trainer.world_size,
            "fixed_noise": pl_module.fixed_noise.sum().item(),
            "latents": pl_module.sample_latents(4).sum().item(),
            "images": [x for batch in self.batches for x in batch],
            "shapes": self.shapes,
            "wrapped": [type(net).__name__ for net in pl_module.train_nets()[:2]],
            "weights": hashlib.md5(b"".join(p.detach().cpu().numpy().tobytes()
                                            for p in pl_module.parameters())).hexdigest(),
            "norms": sorted({type(m).__name__ for m in pl_module.modules() if "Norm" in type(m).__name__}),
        }
        (self.dirpath / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))


class ScalerProbe(pl.Callback):
    """Records the AMP grad scaler's state as training starts (after any resume)."""

    seen: dict = {}

    def on_train_start(self, trainer, pl_module):
        ScalerProbe.seen = dict(trainer.precision_plugin.scaler.state_dict())


class HostSyncCounter(pl.Callback):
    """Counts tensor-to-host conversions (.item(), float(), .cpu(), ...) per iteration, from the
    start of one iteration to the start of the next, so logging and the progress bar count too.

    torch.optim's own reads are left out: Adam keeps its step counters on the host by design
    (fused CUDA Adam keeps them on the device), so reading them never waits for the device."""

    CONVERSIONS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")

    last: "HostSyncCounter"

    def __init__(self):
        HostSyncCounter.last = self
        self.counts: list[int] = []
        self._originals = {name: getattr(torch.Tensor, name) for name in self.CONVERSIONS}

    def _patch(self) -> None:
        def counting(original):
            def wrapper(*args, **kwargs):
                if "torch/optim/" not in sys._getframe(1).f_code.co_filename:
                    self.counts[-1] += 1
                return original(*args, **kwargs)
            return wrapper

        for name, original in self._originals.items():
            setattr(torch.Tensor, name, counting(original))

    def _restore(self) -> None:
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, original)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._restore()
        self.counts.append(0)
        self._patch()

    def on_train_epoch_end(self, trainer, pl_module):
        self._restore()


class CudaSyncGuard(pl.Callback):
    """Makes any CUDA synchronisation an error from the start of an iteration to the start of the
    next, except in the first (the cache moves to the device) and in logging iterations."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        iteration = trainer.global_step // 2
        logging = (iteration + 1) % trainer.log_every_n_steps == 0
        torch.cuda.set_sync_debug_mode("default" if iteration == 0 or logging else "error")

    def on_train_epoch_end(self, trainer, pl_module):
        torch.cuda.set_sync_debug_mode("default")


class MemoryFormatProbe(pl.Callback):
    """Records whether every conv weight is NHWC (channels_last) when training ends."""

    nhwc: bool

    def on_train_end(self, trainer, pl_module):
        weights = [m.weight for m in pl_module.modules() if isinstance(m, torch.nn.Conv2d)]
        MemoryFormatProbe.nhwc = all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


def unavailable_features(**options):
    """A feature extractor that cannot be built here, as Inception is with no network."""
    from dcgan.metrics.features import FeaturesUnavailable

    raise FeaturesUnavailable("these features need weights this machine does not have")


class Poison(pl.Callback):
    """Sets a weight of G to NaN before iteration `at` (or, after=true, once its update is done:
    finite losses, then weights an inf gradient has broken), as a diverging run would."""

    def __init__(self, at: int, after: bool = False):
        self.at = at
        self.after = after

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.after and trainer.global_step // 2 == self.at:
            self._poison(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.after and trainer.global_step // 2 - 1 == self.at:
            self._poison(pl_module)

    @staticmethod
    def _poison(pl_module):
        with torch.no_grad():
            pl_module.generator.main[0].weight.fill_(float("nan"))


class Interrupt(pl.Callback):
    """Sends this process `signal` (TERM or INT) once iteration `after` has finished."""

    def __init__(self, after: int, signal: str):
        self.after = after
        self.signal = signal

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step // 2 - 1 == self.after:
            import os
            import signal

            os.kill(os.getpid(), getattr(signal, f"SIG{self.signal}"))


class FillDisk(pl.Callback):
    """Fills the disk that `path` is on, with the file `path`, as epoch `epoch` ends (before the
    checkpoint callback, which runs last): a disk that runs full during a run. writer_lag: seconds
    TensorBoard's writer thread waits before each record it writes, as on a busy machine, so that
    it meets the full disk after the run has failed."""

    def __init__(self, path: str, epoch: int, writer_lag: float = 0.0):
        self.path = Path(path)
        self.epoch = epoch
        self.writer_lag = writer_lag

    def setup(self, trainer, pl_module, stage):
        if not self.writer_lag:
            return
        from tensorboard.summary.writer.record_writer import RecordWriter
        write = RecordWriter.write

        def lagging(writer, data):
            if threading.current_thread() is not threading.main_thread():
                time.sleep(self.writer_lag)
            write(writer, data)

        RecordWriter.write = lagging  # this process is the run's own: nothing else shares it

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch != self.epoch:
            return
        with open(self.path, "wb", buffering=0) as file:  # unbuffered: every write reaches the disk
            try:
                while True:
                    file.write(bytes(4096))
            except OSError:  # ENOSPC: full
                pass


class StepCounter(pl.Callback):
    """Writes to `path` how many batches were trained and which optimizer stepped, in order."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.batches = 0
        self.steps: list[str] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.steps.append("gd"[trainer.optimizers.index(optimizer)])

    def on_train_end(self, trainer, pl_module):
        self.path.write_text(json.dumps({"batches": self.batches, "optimizer_steps": self.steps}))


class AtExit(pl.Callback):
    """Registers an exit handler as training starts, as a logger's library would: it writes "ran" to
    `path` and prints a last line, unflushed."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module):
        atexit.register(self._ran)

    def _ran(self):
        self.path.write_text("ran")
        print("the exit handler ran")  # a pipe holds this in Python's buffer until something flushes it


class FailFirstAttempt(pl.Callback):
    """Under torchrun: fails the job's first attempt as epoch `epoch` starts, so that TorchElastic
    restarts it; writes where each attempt started (attempt<N>.json in dirpath)."""

    def __init__(self, dirpath: str, epoch: int = 1):
        self.dirpath = Path(dirpath)
        self.epoch = epoch

    def on_train_start(self, trainer, pl_module):
        self.dirpath.mkdir(parents=True, exist_ok=True)
        attempt = os.environ["TORCHELASTIC_RESTART_COUNT"]
        start = {"epoch": trainer.current_epoch, "global_step": trainer.global_step}
        (self.dirpath / f"attempt{attempt}.json").write_text(json.dumps(start))

    def on_train_epoch_start(self, trainer, pl_module):
        if os.environ["TORCHELASTIC_RESTART_COUNT"] == "0" and trainer.current_epoch == self.epoch:
            raise RuntimeError("the first attempt fails here (a test of TorchElastic's restart)")


class Pace(pl.Callback):
    """Slows training to `seconds` per iteration and writes the last iteration done to
    <dirpath>/iteration (with SLURM's restart count), so a test can signal a job mid-epoch."""

    def __init__(self, dirpath: str, seconds: float = 0.5):
        self.dirpath = Path(dirpath)
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        import time

        time.sleep(self.seconds)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        (self.dirpath / "iteration").write_text(f"{restarts} {pl_module.iteration}")


class CacheProbe(pl.Callback):
    """Each rank writes <dirpath>/cache<N>.json: its data's cache tier and the cache files it has memory-mapped."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer, pl_module):
        mapped = sorted({line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                         if line.endswith(".u8")})
        self.dirpath.mkdir(parents=True, exist_ok=True)
        (self.dirpath / f"cache{trainer.global_rank}.json").write_text(
            json.dumps({"tier": trainer.datamodule.tier, "mapped": mapped}))
