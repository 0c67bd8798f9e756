"""A resumed run ends with the weights an uninterrupted one has, whatever the loader settings and
wherever the checkpoint was written: at an epoch end or mid-epoch, in the first epoch or a later one;
class-conditional runs, x-flips, DiffAugment and ADA (its p and running sums too) included."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning.utilities.exceptions import SIGTERMException

from train import train

LOADERS = {  # the folder preset's loader settings: decoded by workers, in the main process, or cached;
    # with and without class labels (a class-conditional run), x-flips and augmentations, whose draws
    # must repeat too; ADA's p starts at 0.5 and moves every 3 iterations (by 0.048 at a time: 48 images
    # of 1,000), so a cut can fall between its adjustments (its running sums are then in the checkpoint)
    "workers": ["data.num_workers=2", "data.cache=false", "data.labels=true", "data.hflip=true",
                "model.augment=[translation,cutout]"],
    "no workers": ["data.num_workers=0", "data.cache=false"],
    "cache": ["data.cache=true", "data.labels=true", "data.hflip=true", "model.ada_target=0.6",
              "model.ada_interval=3", "model.ada_kimg=1", "model.ada_p=0.5"],
}
# 3 epochs of 4 iterations; resumed from the end of epochs 1 and 2 and from the middle of epochs 0 and 1
EPOCH_ENDS = ["epoch=001.ckpt", "epoch=002.ckpt"]
MID_EPOCH = [1, 5]  # the iteration after which the run is stopped


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(80):  # two classes, for the labelled settings
        (root / "ab"[i % 2]).mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / "ab"[i % 2] / f"{i:02d}.png")
    return root


def weights(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {key: value for key, value in state.items() if key.startswith(("generator.", "discriminator.", "augment."))}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    apart = {key: (a[key].float() - b[key].float()).abs().max().item() for key in a}
    assert max(apart.values()) <= 1e-6, {key: gap for key, gap in apart.items() if gap > 1e-6}


@pytest.mark.slow
@pytest.mark.parametrize("loader", LOADERS)
def test_a_resumed_run_ends_where_one_run_would(run_config, tmp_path: Path, images: Path, loader: str):
    def run(name: str, *overrides: str) -> Path:
        train(run_config("experiment=cifar32", f"data.root={images}", f"paths.data_dir={tmp_path / 'data'}",
                         "trainer.max_epochs=3", "callbacks.checkpoints.every_n_epochs=1", "~callbacks.quality",
                         "~callbacks.figures", "~callbacks.image_grids", *LOADERS[loader],
                         f"paths.output_dir={tmp_path / name}", *overrides))
        return tmp_path / name

    whole = weights(run("whole"))
    filters = list(warnings.filters)  # after the first run's imports, which add their own filters
    for checkpoint in EPOCH_ENDS:
        resumed = run(f"from-{checkpoint[6:9]}", f"ckpt_path='{tmp_path / 'whole' / 'checkpoints' / checkpoint}'")
        assert_same_weights(weights(resumed), whole)
    for after in MID_EPOCH:
        with pytest.raises(SIGTERMException):
            run(f"cut{after}", f"+callbacks.interrupt={{_target_: probes.Interrupt, after: {after}, signal: TERM}}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resumed = run(f"resumed{after}", f"ckpt_path={tmp_path / f'cut{after}' / 'checkpoints' / 'last.ckpt'}")
        resume_warnings = [str(w.message) for w in caught if "resum" in str(w.message) and "srun" not in str(w.message)]
        assert not resume_warnings  # no false "unreliable resume" warning (Lightning's srun hint quotes the command)
        assert_same_weights(weights(resumed), whole)
    assert warnings.filters == filters  # nothing silenced for the rest of the process (a sweep's next jobs)
