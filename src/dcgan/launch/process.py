"""What every process that runs a training job sets up before Hydra composes its config: the
resolvers the config's names use and the console's filters. train.py calls prepare() as it is
imported; a job that submitit starts from a pickle (launch/submitit.py) calls it too, since
train.py's module code never runs there. And how an entry script's process ends once its work is
done: at once (exit_now)."""

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import NoReturn

from omegaconf import OmegaConf

from dcgan.callbacks import console
from dcgan.launch import job, slurm, sweep, torchrun


def prepare() -> None:
    OmegaConf.register_new_resolver("job_name", sweep.job_name, replace=True)  # a sweep's job directories
    # names run and sweep directories; cached in the config, so a job that submitit runs from the
    # pickled config (a process of its own) reads the sweep's time, not its own
    OmegaConf.register_new_resolver("launch_time", torchrun.launch_time, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("run_name", job.run_name, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("rank_suffix", job.rank_suffix, replace=True)  # the ranks' logs
    OmegaConf.register_new_resolver("on_first_rank", job.on_first_rank, replace=True)  # .hydra/ from rank 0 only
    OmegaConf.register_new_resolver("slurm_gpus", slurm.gpus, replace=True)  # no gres request on a CPU
    OmegaConf.register_new_resolver("slurm_cpus", slurm.cpus, replace=True)
    console.quiet_third_parties()
    console.our_warnings_in_one_line()


def runs_as_program(script: str) -> bool:
    """Whether Python was started to run this script (`python [options] train.py ...`, as a user,
    Lightning's DDP launcher and torchrun start it), not another program that runs it in its own
    process (pytest, pdb, `python -m`, `python -i`), which must go on after the script's end."""
    arguments = iter(sys.orig_argv[1:])
    for argument in arguments:
        if argument in ("-m", "-c", "-"):
            return False
        if argument in ("-X", "-W"):  # options that take a value
            next(arguments, None)
        elif not argument.startswith("-"):
            return not sys.flags.interactive and Path(argument).resolve() == Path(script).resolve()
    return False


def exit_now() -> NoReturn:
    """End the finished process without Python's teardown of its ~4,000 modules (torch, Lightning,
    matplotlib), which took 1.2 s at the end of every run for nothing: the OS frees the memory.
    What a normal exit does that anyone relies on still happens, in Python's own order: threads
    that are not daemons are waited for, the atexit handlers run (loggers' last flush, logging's,
    multiprocessing's children, temporary folders), and the standard streams are flushed."""
    threading._shutdown()  # what Python's own exit does first (private, but the same call)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(0)
