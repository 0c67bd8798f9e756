"""The fast paths keep the results: the decoded-image cache, no host syncs, torch.compile."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dcgan.data.cache
import dcgan.data.tiers
from dcgan.data.folder import ImageFolderDataModule
from dcgan.errors import UsageError
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
    plain = ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=0, cache=False)
    cached = ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=0, cache=True)
    assert torch.equal(batches(plain, [0, 3, 9]), batches(cached, [0, 3, 9]))
    cached.setup("fit")
    loader = cached.train_dataloader()
    assert loader.num_workers == 0 and next(iter(loader)).dtype == torch.int64  # indices only


@pytest.mark.parametrize("cache", [True, False])
def test_a_folder_is_decoded_once_per_state_of_its_files(folder: Path, tmp_path: Path, monkeypatch, cache: bool):
    cache_dir = tmp_path / "cache"

    def module() -> ImageFolderDataModule:
        return ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=1, cache=cache,
                                     cache_dir=str(cache_dir))

    first = module()
    first.prepare_data()  # decoded once, in a worker process: the cache, or the search for bad images
    before = batches(first, list(range(10)))

    def no_decoding(*args, **kwargs):
        raise AssertionError("a folder must not be decoded again while its files are the same")

    with monkeypatch.context() as patch:
        patch.setattr(dcgan.data.cache, "decode_all", no_decoding)
        again = module()  # another rank, or a resumed run
        again.prepare_data()
        assert torch.equal(batches(again, list(range(10))), before)

    # Edited in place, with its size kept and its modification time put back (cp -p, rsync -t)
    edited = sorted(folder.rglob("*.png"))[0]
    stat = edited.stat()
    edited.write_bytes(bytes(stat.st_size))  # no longer an image
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = module()
    after.prepare_data()
    with pytest.warns(UserWarning, match=f"skipped 1 images .*{edited.name}"):
        after.setup("fit")
    assert len(after.dataset) == 9
    assert sorted(p.suffix for p in cache_dir.iterdir()) == ([".json", ".u8"] if cache else [".json"])  # one record


def test_a_changed_folder_leaves_no_stale_array_behind(folder: Path, tmp_path: Path):
    def module(cache: bool) -> ImageFolderDataModule:
        return ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=0, cache=cache,
                                     cache_dir=str(tmp_path / "cache"))

    module(cache=True).prepare_data()
    (folder / "new.png").write_bytes((folder / "2.png").read_bytes())
    module(cache=False).prepare_data()  # scanned the new state only: the old array would be 2.5 GB of CelebA
    assert not list((tmp_path / "cache").glob("*.u8"))


def test_the_cache_tier_is_chosen_from_the_sizes_and_every_tier_trains_exactly_what_decoding_trains(
        run_config, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def module(cache, cache_dir: Path | None = None) -> ImageFolderDataModule:
        return ImageFolderDataModule(str(folder), image_size=16, batch_size=4, num_workers=0, cache=cache,
                                     cache_dir=cache_dir and str(cache_dir))

    assert (module("auto").tier, module(True).tier, module("host").tier, module(False).tier) == \
        ("device", "device", "host", None)
    size = 10 * 3 * 16 * 16  # bytes, decoded
    with monkeypatch.context() as patch:  # twice the room there is on the device, then in host memory too
        patch.setattr(dcgan.data.tiers, "DEVICE_SHARE", size / dcgan.data.tiers.device_memory(None) / 2)
        assert module("auto").tier == "host"
        patch.setattr(dcgan.data.tiers, "HOST_SHARE", size / dcgan.data.tiers.host_memory() / 2)
        assert module("auto", tmp_path / "cache").tier == "disk" and module("auto").tier is None
    with pytest.raises(UsageError, match="cache=disk keeps the decoded images in data.cache_dir"):
        module("disk")
    tiers = ("device", "host", "disk", "false")
    for cache in tiers:
        train(run_config("experiment=cifar32", f"data.root={folder}", "data.batch_size=4", "data.num_workers=1",
                         "trainer.max_epochs=2", "~callbacks.quality", "~callbacks.figures", f"data.cache={cache}",
                         f"paths.output_dir={tmp_path / cache}", f"paths.data_dir={tmp_path / 'data'}"))
    weights = [torch.load(tmp_path / cache / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for cache in tiers]
    assert all(torch.equal(weights[0][key], other[key]) for other in weights[1:] for key in weights[0])


def test_no_host_syncs_between_logging_steps(run_config):
    train(run_config("trainer.limit_train_batches=10", "trainer.log_every_n_steps=5", "~callbacks.image_grids",
                     "callbacks.progress_bar.refresh_rate=5", "+callbacks.syncs={_target_: probes.HostSyncCounter}"))
    counts = HostSyncCounter.last.counts
    logging = {4, 9}  # iterations whose scalars are written ((i + 1) % 5 == 0)
    assert len(counts) == 10
    assert [c for i, c in enumerate(counts[:-1]) if i not in logging] == [0] * 8
    assert counts[4] > 0  # the logging step does convert (the count works)


@pytest.mark.gpu  # CUDA's sync debug mode
def test_no_device_syncs_between_logging_steps_on_gpu(run_config):
    train(run_config("trainer.accelerator=gpu", "trainer.precision=bf16-mixed", "trainer.limit_train_batches=10",
                     "trainer.log_every_n_steps=5", "~callbacks.image_grids", "callbacks.progress_bar.refresh_rate=5",
                     "+callbacks.guard={_target_: probes.CudaSyncGuard}"))


@pytest.mark.slow
def test_compiled_networks_train_with_the_penalties_as_the_eager_ones_do(run_config, tmp_path: Path):
    """The penalties' double backward runs through the eager D (torch.compile's graphs refuse
    it: "compiled with non-empty donated buffers"), so they come out as without compile."""
    options = ["model.r1_gamma=1.0", "model.gp_lambda=1.0", "model.d_norm=layer", "trainer.limit_train_batches=2",
               "~callbacks.quality", "~callbacks.figures"]
    logged = {name: train(run_config(*options, f"model.compile={name}", f"paths.output_dir={tmp_path / name}"))
              for name in ("true", "false")}
    for key in ("train/loss_d", "train/loss_g", "train/r1", "train/gp"):
        assert logged["true"][key] == pytest.approx(logged["false"][key], rel=1e-3), key


@pytest.mark.parametrize(("setting", "nhwc"), [("null", True), ("false", False), ("true", True)])
def test_channels_last_follows_the_setting_and_defaults_to_nhwc_on_cpu(run_config, setting: str, nhwc: bool):
    train(run_config(f"model.channels_last={setting}", "trainer.limit_train_batches=1", "data.image_size=32",
                     "+callbacks.formats={_target_: probes.MemoryFormatProbe}"))
    assert MemoryFormatProbe.nhwc is nhwc


def test_cuda_graph_compile_modes_are_refused_before_any_work(run_config, tmp_path: Path):
    with pytest.raises(UsageError, match="model.compile='reduce-overhead' is not a mode that works here"):
        train(run_config("model.compile=reduce-overhead"))
    assert not (tmp_path / "run").exists()
