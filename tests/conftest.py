"""Shared helpers: compose train.py's real config, shrunk to run in seconds on a CPU; run an entry
script in this process; and keep `pytest` (no process started) apart from `pytest -m slow`."""

import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]

# Tiny widths, 16x16 images, a few batches, CPU, no progress bar: the real pipeline, in seconds.
SHRINK = [
    "model.nz=16",
    "model.ngf=8",
    "model.ndf=8",
    "data.image_size=16",
    "data.batch_size=16",
    "trainer.accelerator=cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar.refresh_rate=0",
    "+trainer.enable_model_summary=false",
    "callbacks.image_grids.every_n_iterations=2",
    "callbacks.quality.every_n_epochs=1",
    "callbacks.quality.num_fake=64",
    "callbacks.quality.num_real=64",
    "callbacks.quality.kid_subset_size=32",
]


def compose_config(overrides: list[str] = (), shrink: bool = True, return_hydra_config: bool = False) -> DictConfig:
    """The config train.py would see for these command-line overrides."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", [*(SHRINK if shrink else []), *overrides], return_hydra_config=return_hydra_config)


def generate_config(*overrides: str) -> DictConfig:
    """The config generate.py would see for these command-line overrides."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("generate", overrides=list(overrides))


def evaluate_config(*overrides: str) -> DictConfig:
    """The config evaluate.py would see for these command-line overrides."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=list(overrides))


def with_random_weights(monkeypatch: pytest.MonkeyPatch, network_class: type, *args, **kwargs):
    """An Inception-v3 of torch-fidelity's (or ours, its subclass) built with random weights (the real
    ones cannot be fetched here), so that everything but the numbers is as in a real run."""
    import io

    import torch

    empty = io.BytesIO()
    torch.save({}, empty)
    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.Module, "load_state_dict", lambda *args, **kwargs: None)
        return network_class(*args, feature_extractor_weights_path=io.BytesIO(empty.getvalue()), **kwargs)


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    """Where runs write what they keep under paths.data_dir (decoded caches, the digits, reference
    features) when a test names no other: this session's temporary folder, never the checkout's
    data/. Through DCGAN_DATA_DIR (conf/paths/default.yaml), which processes a test starts inherit."""
    os.environ["DCGAN_DATA_DIR"] = str(tmp_path_factory.mktemp("data_dir"))
    yield Path(os.environ["DCGAN_DATA_DIR"])
    del os.environ["DCGAN_DATA_DIR"]


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in digits and their FID classifier, written once for the whole session: by the
    first pytest-xdist worker that needs them, under a lock (the classifier takes seconds)."""
    from filelock import FileLock

    from dcgan.data.digits import MARKER, write_digits
    from dcgan.metrics.features import digit_classifier

    # a worker's basetemp is <the session's>/popen-gw<N>: its parent is shared by this session's workers only
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else \
        tmp_path_factory.getbasetemp()
    root = shared / "data" / "digits"
    with FileLock(shared / "digits.lock"):
        if not (root / MARKER).exists():
            write_digits(root)
            digit_classifier(str(root))  # kept in root/.classifier.pt, as the first run would
    return root


@pytest.fixture
def run_config(tmp_path: Path, digits_root: Path):
    """compose_config with this test's own output folder and the shared digits."""

    def make(*overrides: str) -> DictConfig:
        return compose_config([f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}",
                               f"data.root={digits_root}", *overrides])

    return make


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real filesystem of 2 MiB and 64 inodes (a hard link takes one on tmpfs, as a new file does)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,nr_inodes=64", "tmpfs", str(disk)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()} (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def run_script(script: str, *arguments: str) -> str | int | None:
    """`python <script> <arguments>` run in this process, as Python runs it (its `__main__` code):
    what it exits with (None: it returned; a string: the one line Python prints to stderr before
    exiting with 1). The imports are paid once per test process, not by every test."""
    handlers, level = logging.root.handlers[:], logging.root.level  # Hydra's job logging replaces them
    argv = sys.argv
    sys.argv = [str(ROOT / script), *arguments]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as done:
        return done.code
    finally:
        sys.argv = argv
        for handler in set(logging.root.handlers) - set(handlers):
            handler.close()
        logging.root.handlers[:], logging.root.level = handlers, level
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked gpu are skipped where torch sees no CUDA GPU; `pytest -m gpu` selects all of
    them (benchmarks/gpu.sh), their own docstrings saying what each needs the GPU for."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (`pytest -m gpu` on a machine with one, or benchmarks/gpu.sh)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


# `pytest` runs what needs no process of its own and `pytest -m slow` the rest (README, Quick start).
# A test that starts a Python process (an entry script, DDP ranks, torchrun, a sweep, TensorBoard)
# pays seconds for its imports: it must be marked slow. Python's audit hook sees every process that
# subprocess starts, whoever starts it (the test, a fixture, Lightning's DDP launcher), so a test that
# breaks the rule fails, naming the command, instead of quietly slowing `pytest` down.
PYTHON_LAUNCHERS = {"torchrun", "srun", "sbatch", "salloc"}  # start Python processes in turn
_running: list[pytest.Item] = []  # the test now running, if it is not marked slow
_started: list[str] = []  # the Python processes it started


def _starts_python(executable, args) -> bool:
    argv = args.split() if isinstance(args, (str, bytes)) else list(args)
    program = os.fsdecode(executable or argv[0]) if (executable or argv) else ""
    name = Path(program).name
    return name.startswith("python") or name in PYTHON_LAUNCHERS or \
        os.path.realpath(program) == os.path.realpath(sys.executable)


def _watch_processes(event: str, args: tuple) -> None:
    if event == "subprocess.Popen" and _running and _starts_python(args[0], args[1]):
        _started.append(" ".join(map(os.fsdecode, [args[1]] if isinstance(args[1], (str, bytes)) else args[1])))


sys.addaudithook(_watch_processes)  # for this process's life: audit hooks cannot be removed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    _running[:] = [] if item.get_closest_marker("slow") else [item]
    try:
        return (yield)
    finally:
        _running.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    try:
        return (yield)
    finally:
        started, _started[:] = _started[:], []
        if started and not item.get_closest_marker("slow"):
            pytest.fail(f"{item.nodeid} starts a Python process ({started[0][:200]}) but is not marked slow: "
                        "mark it @pytest.mark.slow (it then runs under `pytest -m slow`), or run the code in "
                        "this process", pytrace=False)
