"""How train.py was started: by hand, or by torchrun (TorchElastic), whose ranks each run it.

launch_time names run directories: Hydra's ${now:...} is read in every process, and ranks that
torchrun starts in different seconds would name different directories. Under torchrun it is the
start of the torchrun agent, the parent of every rank on the machine, so all agree; over several
nodes, whose agents start at times of their own, rank 0's is passed to every rank through
torchrun's rendezvous store, so all nodes name one directory.

When a rank fails, TorchElastic restarts every rank of the job (torchrun --max-restarts): the
restarted attempt names its directory <time>-restart<N> and goes on from the last checkpoint of
the latest attempt before it (earlier_attempt_checkpoint), as TorchElastic expects of a script.
"""

import functools
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def rank() -> int:
    """This rank's global rank among torchrun's ranks (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0")) if under_torchrun() else 0


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
    if not under_torchrun():
        return datetime.now()
    if int(os.environ.get("WORLD_SIZE", "1")) > int(os.environ.get("LOCAL_WORLD_SIZE", "1")):
        return _rank0s(_agent_start)  # several nodes
    return _agent_start()


def _agent_start() -> datetime:
    try:
        return _start_of(os.getppid())
    except (OSError, ValueError, IndexError):  # no /proc (not Linux): each rank's own time
        return datetime.now()


def _rank0s(time: Callable[[], datetime]) -> datetime:
    """Rank 0's time(), read by every rank of every node from torchrun's store (the agents'
    TCPStore that MASTER_ADDR:MASTER_PORT name), under a key of this run and attempt."""
    from datetime import timedelta

    import torch.distributed as dist

    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                          timeout=timedelta(minutes=10))
    key = f"dcgan/launch_time/{os.environ['TORCHELASTIC_RUN_ID']}/{_restarts()}"
    if rank() == 0:
        store.set(key, str(time().timestamp()))
    return datetime.fromtimestamp(float(store.get(key)))


def _start_of(pid: int) -> datetime:
    """A process's start, from Linux's /proc: clock ticks after boot, read the same by every child."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
    stat = Path("/proc/stat").read_text().splitlines()
    boot = next(int(line.split()[1]) for line in stat if line.startswith("btime"))  # seconds since the epoch
    return datetime.fromtimestamp(boot + ticks // os.sysconf("SC_CLK_TCK"))
