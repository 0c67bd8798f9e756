"""What a process learns from SLURM: whether it is a task of a job, its rank, how often the job
was requeued, and how to requeue it; and what the queue says of a job that waits.

Preemption and time limits (see README, Scaling up): every signal SLURM sends before it stops a
job ends the run through Lightning's SIGTERM path, between two iterations, with last.ckpt written.
SIGTERM is what SLURM sends when it requeues or preempts a job (`scontrol requeue`,
PreemptMode=REQUEUE) and when a user cancels one: SLURM itself decides whether the job comes
back. USR1 and USR2 are the warnings `sbatch --signal=USR1@<seconds>` (Lightning's convention) and
submitit (`--signal=USR2@120`, before its time limit or when preempted) ask for: then rank 0
requeues the job itself once the checkpoint is written. A requeued job starts with
SLURM_RESTART_COUNT > 0 and goes on from the last.ckpt in its run directory (job.py).

Neither Lightning's auto-requeue nor submitit's checkpoint() is used: both save from inside the
signal handler, in the middle of an iteration (after D's update and before G's, say), which
cannot resume exactly; Lightning's also writes hpc_ckpt_<N>.ckpt beside the run instead of last.ckpt.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

WARNINGS = (signal.SIGUSR1, signal.SIGUSR2)  # "the job ends soon": checkpoint, then requeue
_requeue_asked = False


def under_slurm() -> bool:
    """A task of a SLURM job step, as Lightning's SLURMEnvironment detects it (an interactive
    shell's allocation, `srun --pty bash`, is not: its processes are started by hand)."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def job_id() -> str:
    """'123', or '123_4' for task 4 of array job 123 (a submitit sweep's jobs)."""
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ["SLURM_JOB_ID"]


def rank() -> int:
    """This task's global rank among the job step's tasks (0 outside SLURM)."""
    return int(os.environ.get("SLURM_PROCID", "0")) if under_slurm() else 0


def restarts() -> int:
    """How often SLURM has requeued this job (0 outside SLURM)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0")) if under_slurm() else 0


@contextmanager
def requeue_on_warning() -> Iterator[None]:
    """While training: USR1/USR2 stop the run after this iteration with a checkpoint (Lightning's
    SIGTERM path), and ask for a requeue (requeue_if_asked, once the checkpoint is written).
    Installed before the Trainer starts, so Lightning leaves USR1 to it."""
    global _requeue_asked
    _requeue_asked = False
    if not under_slurm():
        yield
        return

    def warned(signum, frame) -> None:
        global _requeue_asked
        if not _requeue_asked:
            _requeue_asked = True
            print(f"dcgan: SLURM sent {signal.Signals(signum).name} (the job ends soon): stopping after this "
                  "iteration with a checkpoint, then requeueing the job", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

    previous = {number: signal.signal(number, warned) for number in WARNINGS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def requeue_if_asked() -> bool:
    """Requeue this job (rank 0 does it, once) when a warning signal asked for it; whether it did."""
    if not (_requeue_asked and under_slurm()):
        return False
    if rank() == 0:
        done = subprocess.run(["scontrol", "requeue", job_id()], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"warning: scontrol requeue {job_id()} failed ({done.stderr.strip()}): the job ends here; "
                  "its last.ckpt resumes it", file=sys.stderr, flush=True)
            return False
        print(f"dcgan: requeued SLURM job {job_id()}: it goes on from its last.ckpt when it starts again",
              file=sys.stderr, flush=True)
    return True


def pending_reasons(job_ids: list[str]) -> dict[str, str]:
    """{job id: squeue's reason} for those of the jobs that wait in the queue (PENDING)."""
    if not job_ids:
        return {}
    listed = subprocess.run(["squeue", "-h", "-r", "-t", "PD", "-j", ",".join(job_ids), "-o", "%i|%r"],
                            check=False, capture_output=True, text=True)
    reasons = dict(line.split("|", 1) for line in listed.stdout.splitlines() if "|" in line)
    return {job: reason for job, reason in reasons.items() if reason not in ("None", "")}


def gpus(accelerator: str, devices: int | str) -> int | None:
    """GPUs to ask each node for: none for trainer.accelerator=cpu (a CPU partition has no GPU
    gres, and asking for one is refused), else one per device."""
    return None if accelerator == "cpu" or not str(devices).isdigit() else int(devices)


def cpus(workers: int | str) -> int:
    """CPUs to ask for each task: the training process and its data loader's workers."""
    return int(workers) + 1
