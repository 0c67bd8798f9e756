"""Which process of which job this is, whoever started it (by hand, torchrun or SLURM), and
what follows from it: the run directory's name, the per-rank log names, and where a restarted or
requeued job goes on from.

Every rank of a job names the same run directory: under torchrun the agent's start
(torchrun.launch_time), under SLURM the job's id, `slurm-<id>`, which a requeued job keeps, so
that it goes on in the directory, TensorBoard run and checkpoints it left.
"""

from pathlib import Path

from dcgan.errors import UsageError
from dcgan.launch import slurm, torchrun


def rank() -> int:
    """The global rank of this process among those torchrun or SLURM started (0 otherwise)."""
    return torchrun.rank() if torchrun.under_torchrun() else slurm.rank()


def rank_suffix() -> str:
    """'_rank<N>' for the ranks after the first, '' for rank 0: their logs' names (train_rank1.log)."""
    return f"_rank{rank()}" if rank() else ""


def on_first_rank(value: str) -> str | None:
    """value for rank 0, None for the other ranks: Hydra's .hydra/ record, which ranks writing at
    once into one directory would tear."""
    return None if rank() else value


def run_name(pattern: str) -> str:
    """The run directory's name under outputs/: 'slurm-<job id>' in a SLURM job, else the launch
    time as pattern (e.g. %Y-%m-%d/%H-%M-%S) with TorchElastic's -restart<N>."""
    if slurm.under_slurm() and not torchrun.under_torchrun():
        return f"slurm-{slurm.job_id()}"
    return torchrun.launch_time(pattern) + torchrun.attempt_suffix()


def restart_checkpoint(output_dir: Path, checkpoints: dict | None) -> tuple[Path | None, str]:
    """(last.ckpt to go on from, who restarted the job) when TorchElastic restarted it or SLURM
    requeued it; (None, '') for a first start. checkpoints: the checkpoint callback's options.

    A first start under SLURM that finds a last.ckpt in its directory (a second run in one job)
    is refused: it would overwrite that run's checkpoints with earlier states."""
    if torchrun.under_torchrun():
        return torchrun.earlier_attempt_checkpoint(output_dir, checkpoints), "TorchElastic restarted the job"
    if not (slurm.under_slurm() and checkpoints):
        return None, ""
    last = Path(checkpoints["dirpath"]) / "last.ckpt"
    if slurm.restarts():
        return (last if last.is_file() else None), f"SLURM requeued job {slurm.job_id()}"
    if last.is_file():
        raise UsageError(f"{last} exists already: this SLURM job has trained into {output_dir} before; resume "
                         f"it with ckpt_path={last}, or give this run a directory of its own "
                         "(hydra.run.dir=...)")
    return None, ""
