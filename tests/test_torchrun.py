"""torchrun (TorchElastic) starts every rank itself: one run directory for all ranks and nodes,
restarts that go on from the last checkpoint, and sweeps refused in one line."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from test_ecosystem import digits, only_run, train_py
from test_parallel import probe


pytestmark = pytest.mark.slow  # every test starts torchrun or Python processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(processes: int = 2) -> tuple[str, ...]:
    return sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", f"--master_port={free_port()}"


def test_torchrun_trains_one_run_in_one_directory(tmp_path: Path, digits_root: Path):
    train_py(tmp_path, *digits(digits_root), "trainer.devices=2", probe(tmp_path / "probe"),
             launcher=torchrun())
    run = only_run(tmp_path / "outputs")
    assert len(list(run.rglob("events.out.tfevents.*"))) == 1 and (run / "checkpoints" / "last.ckpt").exists()
    ranks = [json.loads((tmp_path / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["weights"] == ranks[1]["weights"]
    assert sorted(p.name for p in run.glob("*.log")) == ["train.log", "train_rank1.log"]
    assert (run / ".hydra" / "config.yaml").exists()  # written by rank 0 alone


def test_ranks_started_in_different_seconds_name_the_same_directory(tmp_path: Path):
    """Every rank names the run directory after the torchrun agent's start, its parent's."""
    child = ("import time, sys; sys.path.insert(0, {src!r}); from dcgan.launch.torchrun import launch_time; "
             "print(launch_time('%Y-%m-%d/%H-%M-%S'))").format(src=str(ROOT / "src"))
    start = f"subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True)"
    parent = (f"import subprocess, sys, time; first = {start}.stdout.strip(); time.sleep(1.2); "
              f"second = {start}.stdout.strip(); print(first, second)")
    env = {**os.environ, "TORCHELASTIC_RUN_ID": "test"}
    first, second = subprocess.run([sys.executable, "-c", parent], env=env, capture_output=True, text=True,
                                   timeout=120).stdout.split()
    assert first == second


def test_a_restarted_torchrun_job_goes_on_from_its_last_checkpoint_in_a_new_directory(tmp_path: Path,
                                                                                      digits_root: Path):
    fail = f"+callbacks.fail={{_target_: probes.FailFirstAttempt, dirpath: '{tmp_path / 'attempts'}'}}"
    launcher = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", "--max-restarts=1",
                f"--master_port={free_port()}")
    printed = train_py(tmp_path, *digits(digits_root), "trainer.max_epochs=2", fail, launcher=launcher)
    first, restarted = sorted(p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir())
    assert restarted.name == f"{first.name}-restart1"
    starts = [json.loads((tmp_path / "attempts" / f"attempt{n}.json").read_text()) for n in (0, 1)]
    assert starts == [{"epoch": 0, "global_step": 0}, {"epoch": 1, "global_step": 4 * 2}]  # after epoch 0
    assert f"going on from {first / 'checkpoints' / 'last.ckpt'}" in printed
    assert torch.load(restarted / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2 * 4 * 2


def test_torchrun_over_two_nodes_trains_one_run_in_one_directory(tmp_path: Path, digits_root: Path):
    """Two torchrun agents (two nodes, here on one host) that start in different seconds: every rank
    takes rank 0's name through the rendezvous store."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    agents = []
    for _ in range(2):
        agents.append(subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
             f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=two-nodes", str(ROOT / "train.py"), *digits(digits_root),
             "trainer.num_nodes=2", probe(tmp_path / "probe")],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        time.sleep(1.5)  # the second node's agent starts in another second
    printed = [agent.communicate(timeout=600)[0] for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], printed[0][-2000:] + printed[1][-2000:]
    run = only_run(tmp_path / "outputs")
    assert sorted(p.name for p in run.glob("*.log")) == ["train.log", "train_rank1.log"]
    ranks = [json.loads((tmp_path / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["weights"] == ranks[1]["weights"]


@pytest.mark.parametrize("sweep", [("-m", "model.lr=1e-4,2e-4"), ("hparams_search=optuna",)])
def test_a_sweep_under_torchrun_is_refused_in_one_line(tmp_path: Path, digits_root: Path,
                                                       sweep: tuple[str, ...]):
    printed = train_py(tmp_path, *digits(digits_root), *sweep, check=False, launcher=torchrun(processes=1))
    assert "error: -m (a Hydra sweep) cannot run under torchrun" in printed
    assert "train.py\", line" not in printed and not (tmp_path / "multirun").exists()  # before any work
