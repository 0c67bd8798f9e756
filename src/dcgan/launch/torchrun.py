"""How train.py was started: by hand, or by torchrun (TorchElastic), whose ranks each run it.

launch_time names run directories: Hydra's ${now:...} is read in every process, and ranks that
torchrun starts in different seconds would name different directories. Under torchrun it is the
start of the torchrun agent, the parent of every rank on the machine, so all agree (on one
machine: the agents of several nodes start at times of their own).

When a rank fails, TorchElastic restarts every rank of the job (torchrun --max-restarts): the
restarted attempt names its directory <time>-restart<N> and goes on from the last checkpoint of
the latest attempt before it (earlier_attempt_checkpoint), as TorchElastic expects of a script.
"""

import functools
import os
from datetime import datetime
from pathlib import Path


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def rank_suffix() -> str:
    """'_rank<N>' for the ranks torchrun starts after the first, '' otherwise: their logs' names."""
    rank = os.environ.get("RANK", "0") if under_torchrun() else "0"
    return "" if rank == "0" else f"_rank{rank}"


def on_first_rank(value: str) -> str | None:
    """value for rank 0 (and outside torchrun), None for the other ranks: Hydra's .hydra/ record,
    which ranks writing at once into one directory would tear."""
    return None if rank_suffix() else value


def _restarts() -> int:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) if under_torchrun() else 0


def attempt_suffix() -> str:
    """'-restart<N>' when TorchElastic has restarted the job N times, '' otherwise."""
    return f"-restart{_restarts()}" if _restarts() else ""


def earlier_attempt_checkpoint(output_dir: Path, checkpoints: dict | None) -> Path | None:
    """last.ckpt of the latest earlier attempt of this torchrun job that wrote one (checkpoints:
    the checkpoint callback's options, its dirpath under output_dir), or None: a first attempt,
    or no checkpoints, or no attempt got as far as one."""
    restarts = _restarts()
    if not restarts or not checkpoints:
        return None
    dirpath = Path(checkpoints["dirpath"])
    if not dirpath.is_relative_to(output_dir):  # one folder for all attempts
        return dirpath / "last.ckpt" if (dirpath / "last.ckpt").is_file() else None
    last = (dirpath / "last.ckpt").relative_to(output_dir)
    first = output_dir.name.removesuffix(attempt_suffix())
    for attempt in reversed(range(restarts)):
        earlier = output_dir.with_name(first + (f"-restart{attempt}" if attempt else "")) / last
        if earlier.is_file():
            return earlier
    return None


def launch_time(pattern: str) -> str:
    """strftime(pattern) of the launch (an OmegaConf resolver: ${launch_time:%H-%M-%S})."""
    return _launched().strftime(pattern)


@functools.cache
def _launched() -> datetime:
    if under_torchrun():
        try:
            return _start_of(os.getppid())
        except (OSError, ValueError, IndexError):  # no /proc (not Linux): each rank's own time
            pass
    return datetime.now()


def _start_of(pid: int) -> datetime:
    """A process's start, from Linux's /proc: clock ticks after boot, read the same by every child."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
    stat = Path("/proc/stat").read_text().splitlines()
    boot = next(int(line.split()[1]) for line in stat if line.startswith("btime"))  # seconds since the epoch
    return datetime.fromtimestamp(boot + ticks // os.sysconf("SC_CLK_TCK"))
