"""How train.py was started: by hand, or by torchrun (TorchElastic), whose ranks each run it.

launch_time names run directories: Hydra's ${now:...} is read in every process, and ranks that
torchrun starts in different seconds would name different directories. Under torchrun it is the
start of the torchrun agent, the parent of every rank on the machine, so all agree.
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
