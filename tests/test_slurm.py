"""train.py on a real SLURM cluster: Debian's slurm-wlm with munge and accounting, two nodes on
this host, started by the project's own script (.ci/slurm.sh) when none answers, and stopped by
it afterwards. Skipped, with the reason, where the packages cannot be installed; CI installs them
and sets DCGAN_REQUIRE_SLURM=1, so that there the tests fail rather than skip."""

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import ROOT, SHRINK

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
SCRIPT = ROOT / ".ci" / "slurm.sh"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A SLURM cluster whose partition 'debug' has the nodes n1 and n2."""
    state = os.environ.get("DCGAN_SLURM_DIR", "/tmp/dcgan-slurm")
    conf = os.environ.setdefault("SLURM_CONF", f"{state}/slurm.conf")
    started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        lines = started.stderr.strip().splitlines() or ["no output"]
        why = next((line for line in reversed(lines) if line.startswith("slurm.sh:")), lines[-1])
        if os.environ.get("DCGAN_REQUIRE_SLURM"):  # with all that the script said: CI's only look at it
            pytest.fail(f"no SLURM cluster could be started: {why}\n" + "\n".join(lines[-120:]))
        pytest.skip(f"no SLURM cluster here and .ci/slurm.sh could not start one (it needs root and apt): {why}")
    yield
    if "answers already" not in started.stderr:  # started here: stopped here
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=120)
    if conf == f"{state}/slurm.conf":
        os.environ.pop("SLURM_CONF", None)


def command(digits_root: Path, *overrides: str, sweep: bool = True) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *(["-m", "hydra/launcher=slurm"] if sweep else []), *SHRINK,
            "experiment=digits", f"data.root={digits_root}", *overrides]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}


def run(cwd: Path, args: list[str], check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def probe(dirpath: str) -> str:
    return f"+callbacks.probe={{_target_: probes.RankProbe, dirpath: '{dirpath}'}}"


def slurm(*args: str) -> str:
    """A SLURM command's output; sbatch passes this environment (tests/ importable) to the job."""
    return subprocess.run(list(args), env=environment(), capture_output=True, text=True, check=True, timeout=60).stdout


def wait_for(condition, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


class Sweep:
    """A sweep started in the background, its output read as it comes; its SLURM jobs are cancelled
    when the test ends, however it ends."""

    def __init__(self, cwd: Path, args: list[str]):
        self.process = subprocess.Popen(args, cwd=cwd, env=environment(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def line(self, pattern: str, timeout: float = 240) -> re.Match:
        """The first line the sweep printed that matches pattern, once it has."""
        regex, deadline = re.compile(pattern), time.monotonic() + timeout
        while True:
            ended = self.process.poll() is not None
            if ended:
                self.reader.join(timeout=10)  # what it printed last
            if found := [m for m in map(regex.search, list(self.lines)) if m]:
                return found[0]
            assert not ended, f"the sweep ended first: {''.join(self.lines)[-2000:]}"
            assert time.monotonic() < deadline, f"no line matching {pattern!r}: {''.join(self.lines)[-2000:]}"
            time.sleep(0.5)

    def jobs(self) -> list[str]:
        return [m.group(1) for m in map(re.compile(r"is SLURM job (\S+);").search, list(self.lines)) if m]

    def finish(self, timeout: float = 300) -> str:
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return "".join(self.lines)

    def __enter__(self) -> "Sweep":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
        for job in self.jobs():
            subprocess.run(["scancel", job], capture_output=True, timeout=60)


def the_sweep(cwd: Path) -> Path:
    (sweep,) = (cwd / "multirun").glob("*/*")
    return sweep


def job_logs(sweep: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted((sweep / ".submitit").rglob("*_log.*")))


def test_a_sweep_of_two_rank_jobs_trains_each_job_with_the_gan_ddp_on_slurm(cluster, tmp_path: Path,
                                                                             digits_root: Path):
    printed = run(tmp_path, command(digits_root, "trainer.devices=2", "model.lr=1e-4,2e-4",
                                    probe("${hydra:runtime.output_dir}/probe"))).stdout
    sweep = the_sweep(tmp_path)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name != ".submitit")
    assert [job.name for job in jobs] == ["0_model.lr=0.0001", "1_model.lr=0.0002"]  # the swept keys only
    assert re.search(r"dcgan: job 0_model.lr=0.0001 is SLURM job \d+_0; follow it with: tail -f ", printed)
    for job in jobs:
        ranks = [json.loads((job / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
        assert [r["world_size"] for r in ranks] == [2, 2]
        assert all(r["wrapped"] == ["DistributedDataParallel"] * 2 for r in ranks)  # G and D, separately
        assert ranks[0]["weights"] == ranks[1]["weights"]
        assert sorted(p.name for p in job.glob("*.log")) == ["train.log", "train_rank1.log"]
        assert len(list(job.rglob("events.out.tfevents.*"))) == 1
    logs = job_logs(sweep)
    assert "Tip: For seamless cloud logging" not in logs and "not used in producing the loss" not in logs
    summary = (sweep / "summary.csv").read_text()
    assert summary.count(",done,") == 2, summary


def test_one_run_over_two_nodes_has_one_directory_named_by_the_job(cluster, tmp_path: Path, digits_root: Path):
    train = shlex.join(command(digits_root, "trainer.num_nodes=2", "trainer.devices=1", probe(str(tmp_path / "probe")),
                               sweep=False))
    job = slurm("sbatch", "--parsable", "--nodes=2", "--ntasks-per-node=1", f"--chdir={tmp_path}",
                f"--output={tmp_path / 'job.out'}", "--wrap", f"srun {train}").strip()
    wait_for(lambda: slurm("squeue", "-h", "-j", job).strip() == "", f"SLURM job {job}")
    assert slurm("sacct", "-n", "-X", "-j", job, "-o", "State,NodeList%20").split() == ["COMPLETED", "n[1-2]"], \
        (tmp_path / "job.out").read_text()[-3000:]
    (run_dir,) = (tmp_path / "outputs").iterdir()
    assert run_dir.name == f"slurm-{job}"
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["train.log", "train_rank1.log"]
    assert (run_dir / ".hydra").is_dir() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    ranks = [json.loads((tmp_path / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["weights"] == ranks[1]["weights"]


def state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_a_job_requeued_twice_goes_on_exactly_and_its_resume_line_runs_as_printed(cluster, tmp_path: Path,
                                                                                 digits_root: Path):
    long = ["trainer.max_epochs=3", "trainer.limit_train_batches=6", "~callbacks.figures"]
    pace = f"+callbacks.pace={{_target_: probes.Pace, dirpath: '{tmp_path / 'pace'}'}}"
    sweep_cwd = tmp_path / "sweep"
    sweep_cwd.mkdir()
    with Sweep(sweep_cwd, command(digits_root, *long, pace, "model.lr=choice(2e-4)")) as started:
        mark = tmp_path / "pace" / "iteration"

        def reached(restarts: int, iteration: int) -> bool:
            done = mark.read_text().split() if mark.exists() else ["0", "0"]
            return [int(n) for n in done] >= [restarts, iteration]

        job = started.line(r"is SLURM job (\S+);").group(1)
        wait_for(lambda: reached(0, 8), "iteration 8")
        slurm("scancel", "--signal=USR2", job)  # submitit's warning before a time limit: checkpoint, requeue
        wait_for(lambda: "PENDING" in slurm("scontrol", "show", "job", job), "the requeue")
        slurm("scontrol", "update", f"jobid={job}", "StartTime=now")  # a requeued job waits 2 minutes first
        wait_for(lambda: reached(1, 13), "iteration 13 after the first requeue")
        slurm("scontrol", "requeue", job)  # what a preempting scheduler does: SIGTERM, then back in the queue
        wait_for(lambda: "PENDING" in slurm("scontrol", "show", "job", job), "the second requeue")
        slurm("scontrol", "update", f"jobid={job}", "StartTime=now")
        printed = started.finish()
    assert started.process.returncode == 0, printed[-3000:]
    sweep = the_sweep(sweep_cwd)
    job_dir = sweep / "0_model.lr=0.0002"
    logs = job_logs(sweep)
    assert logs.count(f"SLURM requeued job {job}: going on from {job_dir / 'checkpoints' / 'last.ckpt'}") == 2, logs[-4000:]
    assert ",done," in (sweep / "summary.csv").read_text()
    events = list(job_dir.rglob("events.out.tfevents.*"))
    assert len(events) == 3 and {p.parent for p in events} == {job_dir / "tensorboard"}  # one run, 3 attempts

    reference = tmp_path / "reference"
    run(tmp_path, command(digits_root, *long, "model.lr=2e-4", f"hydra.run.dir={reference}", sweep=False))
    resumed, uninterrupted = state_dict(job_dir / "checkpoints" / "last.ckpt"), state_dict(reference / "checkpoints" / "last.ckpt")
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=1e-6, msg=name)

    (line,) = [line for line in logs.splitlines() if line.startswith("dcgan: done")]
    printed = line.split("go on with: ", 1)[1]
    assert printed.startswith("python train.py ") and "'ckpt_path=\"" in printed  # quoted for the shell and Hydra
    as_printed = printed.replace("python train.py", shlex.join([sys.executable, str(ROOT / "train.py")]), 1)
    again = tmp_path / "again"
    again.mkdir()
    result = subprocess.run(["bash", "-c", as_printed], cwd=again, env=environment(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (went_on,) = (again / "outputs").glob("*/*")
    assert torch.load(went_on / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2 * 6 * 2 * 3


def test_a_job_waiting_in_the_queue_is_said_with_its_reason_and_a_cancelled_one_gets_a_row(cluster, tmp_path: Path,
                                                                                         digits_root: Path):
    with Sweep(tmp_path, command(digits_root, "+hydra.launcher.additional_parameters.begin=now+3600",
                                 "model.lr=2e-4,3e-4")) as started:
        waiting = started.line(r"dcgan: job 0_\S+ \(SLURM job (\S+)\) is waiting in the queue")
        job = waiting.group(1)
        assert waiting.string.strip() == (
            f"dcgan: job 0_model.lr=0.0002 (SLURM job {job}) is waiting in the queue: BeginTime; see it with: "
            f"squeue -j {job}; give it up with: scancel {job}")
        slurm("scancel", job.split("_")[0])
        started.finish(timeout=120)
    assert started.process.returncode != 0  # the sweep's jobs failed
    summary = (the_sweep(tmp_path) / "summary.csv").read_text()
    assert summary.count(",failed,") == 2 and "ended CANCELLED before it finished" in summary, summary
