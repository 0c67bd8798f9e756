"""Shared helpers: compose train.py's real config, shrunk to run in seconds on a CPU."""

from pathlib import Path

import pytest
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
    """An Inception-v3 of torchmetrics' or torch-fidelity's built with random weights (the real
    ones cannot be fetched here), so that everything but the numbers is as in a real run."""
    import io

    import torch

    empty = io.BytesIO()
    torch.save({}, empty)
    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.Module, "load_state_dict", lambda *args, **kwargs: None)
        return network_class(*args, feature_extractor_weights_path=io.BytesIO(empty.getvalue()), **kwargs)


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in digits, written once for the whole session."""
    from dcgan.data.digits import write_digits

    root = tmp_path_factory.mktemp("data") / "digits"
    write_digits(root)
    return root


@pytest.fixture
def run_config(tmp_path: Path, digits_root: Path):
    """compose_config with this test's own output folder and the shared digits."""

    def make(*overrides: str) -> DictConfig:
        return compose_config([f"paths.output_dir={tmp_path / 'run'}", f"data.root={digits_root}", *overrides])

    return make
