"""Data-parallel GAN training: DDP over G and D separately, with ranks launched per Hydra job.

register() makes Lightning's "ddp" strategies (the ones strategy="auto" picks for several devices
or nodes) mean GANDDPStrategy; train.py calls it.
"""

import inspect
import os
import subprocess
import sys

import torch
from hydra.core.hydra_config import HydraConfig
from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from torch.nn.parallel import DistributedDataParallel

from dcgan.errors import UsageError

DDP_OPTIONS = inspect.signature(DistributedDataParallel).parameters


class GANDDPStrategy(DDPStrategy):
    """DDP with the generator and the discriminator wrapped separately.

    Lightning's DDP wraps the whole LightningModule, so each of the GAN step's two backward passes
    leaves one network without gradients and DDP stops ("parameters that were not used in
    producing the loss"). find_unused_parameters=True gets past that by walking the autograd graph
    before every backward and all-reducing the idle network's (zero) gradients as well: at the
    seed's 64x64 model that is 50.7 MB per iteration against the 25.4 MB one DDP per network
    sends, twice the traffic, which is what costs time between GPUs and nodes. On 2 CPU processes
    (gloo) both ran 173 ms per iteration at the digits model (benchmarks/ddp_overhead.py).

    The LightningModule receives the wrappers through ``distribute(wrap)`` and keeps them outside
    its module tree, so checkpoints have the same keys with and without DDP.
    """

    def _configure_launcher(self) -> None:
        # Lightning calls this while building the Trainer, before any rank is started.
        if self._layer_sync is not None and self.root_device.type == "cpu":
            raise UsageError("trainer.sync_batchnorm=true needs GPUs: PyTorch's SyncBatchNorm does not run on CPU")
        if self._start_method == "popen":
            self._launcher = HydraJobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)
        else:
            super()._configure_launcher()

    def configure_ddp(self) -> None:
        device_ids = self.determine_ddp_device_ids()
        # No buffer broadcast before each forward: D runs twice before its backward, and a
        # broadcast at the second forward rewrites the BatchNorm running stats that cuDNN saved for
        # the first one's backward ("modified by an inplace operation"). Training never reads
        # running stats. Torch 2.14 renamed the option (its old name warns); the new one still syncs
        # them once, at the start, which is harmless.
        no_sync = "forward_sync_buffers" if "forward_sync_buffers" in DDP_OPTIONS else "broadcast_buffers"
        kwargs = {no_sync: False, **self._ddp_kwargs}
        self.lightning_module.distribute(lambda net: DistributedDataParallel(net, device_ids=device_ids, **kwargs))

    def teardown(self) -> None:
        if self.lightning_module is not None:
            self.lightning_module.distribute(None)
        super().teardown()
        # The next job of a Hydra sweep runs in this process and starts ranks of its own: it must
        # find neither this job's process group (Lightning keeps it until exit) nor its variables.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if isinstance(self._launcher, HydraJobLauncher):
            self._launcher.restore_environment()


class HydraJobLauncher(_SubprocessScriptLauncher):
    """Starts ranks 1.. as processes that run this Hydra job, not the whole command line.

    Lightning's launcher re-runs sys.argv: under ``-m`` every extra rank would re-run the entire
    sweep into directories of its own. Here each rank gets the job's own overrides and its run
    directory, so a sweep of devices=2 jobs leaves one directory per job.
    """

    _VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")

    def _call_children_scripts(self) -> None:
        self._saved = {name: os.environ.get(name) for name in self._VARIABLES}
        if not HydraConfig.initialized():
            return super()._call_children_scripts()
        self._check_can_spawn_children()
        env = self.cluster_environment
        os.environ.update(
            MASTER_ADDR=env.main_address,
            MASTER_PORT=str(env.main_port),
            NODE_RANK=str(env.node_rank()),
            LOCAL_RANK=str(env.local_rank()),
            WORLD_SIZE=str(self.num_processes * self.num_nodes),
        )
        hydra = HydraConfig.get()
        job = [sys.executable, os.path.abspath(sys.argv[0]), *hydra.overrides.task]
        # RUN mode: a job of a sweep (hparams_search=optuna sets MULTIRUN) must not sweep again
        job += [f"hydra.run.dir='{hydra.runtime.output_dir}'", "hydra.output_subdir=null", "hydra.mode=RUN"]
        self.procs = [
            subprocess.Popen(
                [*job, f"hydra.job.name={hydra.job.name}_rank{rank}"],
                env={**os.environ, "LOCAL_RANK": str(rank)},
                cwd=hydra.runtime.cwd,
            )
            for rank in range(1, self.num_processes)
        ]

    def restore_environment(self) -> None:
        """Undo the variables set for the ranks: with LOCAL_RANK left set, Lightning would take the
        next job's ranks as started by someone else and wait for them forever."""
        for name, value in getattr(self, "_saved", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def register() -> None:
    """Make "ddp", "ddp_spawn" and "ddp_fork" (and so strategy="auto" on several devices) mean
    GANDDPStrategy: Lightning's own cannot train a GAN by manual optimization."""
    for name, start_method in (("ddp", "popen"), ("ddp_spawn", "spawn"), ("ddp_fork", "fork")):
        StrategyRegistry.register(name, GANDDPStrategy, description=f"DDP over G and D separately, {start_method}",
                                  override=True, start_method=start_method)
