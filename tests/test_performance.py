"""The fast paths keep the results: the decoded-image cache, no host syncs, torch.compile."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dcgan.cache
from dcgan.errors import UsageError
from dcgan.data import ImageFolderDataModule
from probes import HostSyncCounter, MemoryFormatProbe
from train import train


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for i in range(10):
        pixels = rng.integers(0, 256, (24 + i, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / ("sub" if i % 2 else ".") / f"{i}.{'png' if i % 3 else 'jpg'}")
    return root


def batches(dm: ImageFolderDataModule, indices: list[int]) -> torch.Tensor:
    """The images the DataModule hands to the model for these dataset indices."""
    dm.setup("fit")
    raw = torch.tensor(indices) if dm.cache else torch.stack([dm.dataset[i] for i in indices])
    return dm.on_after_batch_transfer(raw, 0)


def test_cached_batches_are_the_decoded_images(folder: Path):
    plain = ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=0)
    cached = ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=0, cache=True)
    assert torch.equal(batches(plain, [0, 3, 9]), batches(cached, [0, 3, 9]))
    cached.setup("fit")
    loader = cached.train_dataloader()
    assert loader.num_workers == 0 and next(iter(loader)).dtype == torch.int64  # indices only


def test_disk_cache_is_reused_and_rebuilt_when_files_change(folder: Path, tmp_path: Path, monkeypatch):
    cache_dir = tmp_path / "cache"

    def module() -> ImageFolderDataModule:
        return ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=1, cache=True,
                                     cache_dir=str(cache_dir))

    first = module()
    first.prepare_data()  # decoded once, in a worker process
    (file,) = cache_dir.glob("*.npy")
    before = batches(first, list(range(10)))

    def no_decoding(*args, **kwargs):
        raise AssertionError("a current cache must not be decoded again")

    monkeypatch.setattr(dcgan.cache, "decode_images", no_decoding)
    assert torch.equal(batches(module(), list(range(10))), before)  # read back, not decoded
    monkeypatch.undo()

    changed = sorted(folder.rglob("*.png"))[0]
    Image.new("RGB", (20, 20), (255, 0, 0)).save(changed)
    os.utime(changed, ns=(1, 1))  # a different size and mtime: the old key no longer matches
    after = module()
    after.prepare_data()
    assert len(list(cache_dir.glob("*.npy"))) == 2 and file.exists()
    assert not torch.equal(batches(after, list(range(10))), before)


def test_no_host_syncs_between_logging_steps(run_config):
    train(run_config("trainer.limit_train_batches=10", "trainer.log_every_n_steps=5", "~callbacks.image_grids",
                     "callbacks.progress_bar.refresh_rate=5", "+callbacks.syncs={_target_: probes.HostSyncCounter}"))
    counts = HostSyncCounter.last.counts
    logging = {4, 9}  # iterations whose scalars are written ((i + 1) % 5 == 0)
    assert len(counts) == 10
    assert [c for i, c in enumerate(counts[:-1]) if i not in logging] == [0] * 8
    assert counts[4] > 0  # the logging step does convert (the count works)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: CUDA's sync debug mode")
def test_no_device_syncs_between_logging_steps_on_gpu(run_config):
    train(run_config("trainer.accelerator=gpu", "trainer.precision=bf16-mixed", "trainer.limit_train_batches=10",
                     "trainer.log_every_n_steps=5", "~callbacks.image_grids", "callbacks.progress_bar.refresh_rate=5",
                     "+callbacks.guard={_target_: probes.CudaSyncGuard}"))


def test_compiled_networks_train(run_config):
    metrics = train(run_config("model.compile=true", "trainer.limit_train_batches=2"))
    assert all(np.isfinite(metrics[k]) for k in ("train/loss_d", "train/loss_g"))


@pytest.mark.parametrize(("setting", "nhwc"), [("null", True), ("false", False), ("true", True)])
def test_channels_last_follows_the_setting_and_defaults_to_nhwc_on_cpu(run_config, setting: str, nhwc: bool):
    train(run_config(f"model.channels_last={setting}", "trainer.limit_train_batches=1", "data.image_size=32",
                     "+callbacks.formats={_target_: probes.MemoryFormatProbe}"))
    assert MemoryFormatProbe.nhwc is nhwc


def test_cuda_graph_compile_modes_are_refused_before_any_work(run_config, tmp_path: Path):
    with pytest.raises(UsageError, match="model.compile='reduce-overhead' is not a mode that works here"):
        train(run_config("model.compile=reduce-overhead"))
    assert not (tmp_path / "run").exists()
