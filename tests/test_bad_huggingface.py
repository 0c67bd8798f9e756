"""Hugging Face sources (a save_to_disk folder, an image folder, a Hub id) given what real disks,
users and networks hand them: damaged or missing arrow and JSON files, labels a column allows
but training does not, wrong columns and splits, no network, images and metadata changed between
runs with their times kept. Each trains with bad records skipped and counted, or is one line."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import formats
from conftest import ROOT, compose_config
from dcgan.config import instantiate_node
from dcgan.errors import UsageError

pytestmark = pytest.mark.filterwarnings("ignore:.*does not have many workers.*")
LABELS = np.array([0, 1, 2, 0, 1, 2])


def pictures(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)


def datamodule(tmp_path: Path, name: str | Path, *overrides: str):
    cfg = compose_config(["experiment=cifar32", "data=huggingface", f"data.name={name}", "data.image_size=16",
                          "data.batch_size=2", "data.num_workers=0", f"paths.data_dir={tmp_path / 'data'}", *overrides])
    return instantiate_node(cfg.data, "data")


def refused(tmp_path: Path, name: str | Path, *overrides: str, match: str) -> str:
    with pytest.raises(UsageError, match=match) as error:
        datamodule(tmp_path, name, *overrides).setup("fit")
    assert "\n" not in str(error.value)
    return str(error.value)


def test_a_damaged_save_to_disk_folder_is_one_line_saying_to_save_it_again(tmp_path: Path):
    saved = formats.huggingface(tmp_path / "hf", pictures(), LABELS)
    state = (saved / "state.json").read_text()
    (saved / "state.json").write_text(state[:20])  # truncated JSON
    refused(tmp_path, saved, match=r"is a save_to_disk folder that cannot be read \(JSONDecodeError.*save_to_disk\)")
    (saved / "state.json").write_text(state)
    arrow = next(saved.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:200])
    refused(tmp_path, saved, match=r"cannot be read \(ArrowInvalid")
    arrow.unlink()
    refused(tmp_path, saved, match=r"cannot be read \(FileNotFoundError")


def test_labels_a_column_allows_but_training_does_not_are_refused(tmp_path: Path):
    saved = formats.huggingface(tmp_path / "hf", pictures(), np.array([0, 1, -1, 0, 1, 2]))  # -1: no label
    refused(tmp_path, saved, "data.labels=true", match=r"row 2 has the class label -1, which is none of its 10 classes")
    datamodule(tmp_path, saved).setup("fit")  # without labels it trains

    import datasets

    def saved_with(name: str, values: list) -> Path:
        rows = {"picture": [formats.png(image) for image in pictures()], "kind": values}
        features = datasets.Features({"picture": datasets.Image(), "kind": datasets.Value("string" if isinstance(
            values[0], str) else "int64")})
        datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / name))
        return tmp_path / name

    refused(tmp_path, saved_with("words", ["cat", "dog"] * 3), "data.labels=true", "data.label_key=kind",
            match=r"data.label_key=kind: its values are not class numbers \(e.g. 'cat'\): cast the column to a ClassLabel")
    refused(tmp_path, saved_with("huge", [0, 1, 10**9, 0, 1, 2]), "data.labels=true", "data.label_key=kind",
            match=r"its class numbers run to 1000000000, more classes than the 6 rows")


def test_wrong_columns_splits_and_options_are_refused_not_ignored(tmp_path: Path):
    saved = formats.huggingface(tmp_path / "hf", pictures(), LABELS)
    refused(tmp_path, saved, "data.image_key=kind", match=r"data.image_key=kind is no image column")
    refused(tmp_path, saved, "data.image_key=photo", match=r"data.image_key=photo is not a column; the columns: picture, kind")
    refused(tmp_path, saved, "data.split=test", match=r"data.split=test: .* holds one dataset, without splits")
    with pytest.warns(UserWarning, match=r"data.root=.* is not used: it is where a Hub dataset is downloaded"):
        datamodule(tmp_path, saved, f"data.root={tmp_path / 'hub'}").setup("fit")
    refused(tmp_path, tmp_path / "nowhere", match=r"data.name=.*nowhere: no such folder")
    (tmp_path / "file.arrow").write_bytes(b"x")
    refused(tmp_path, tmp_path / "file.arrow", match=r"is a file: name a save_to_disk folder")


def test_a_hub_id_without_network_is_one_line_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def blocked(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    monkeypatch.setattr(socket.socket, "connect", blocked)
    refused(tmp_path, "huggan/flowers-102-categories", f"data.root={tmp_path / 'hub'}",
            match=r"data.name=huggan/flowers-102-categories: the Hugging Face Hub cannot be reached .* set "
                  r"HF_HUB_OFFLINE=1 to read it from datasets' cache \(.*hub\)")


def test_an_image_replaced_keeping_its_size_and_time_is_seen_by_the_next_run(tmp_path: Path):
    root = formats.folder(tmp_path / "images", pictures(), LABELS)
    first = datamodule(tmp_path, root)
    first.setup("fit")
    target = root / "class1" / "0001.png"
    times = target.stat()
    other = formats.png(pictures(seed=1)[1])
    assert len(other) == times.st_size  # random pixels: PNG sizes match
    target.write_bytes(other)
    os.utime(target, ns=(times.st_atime_ns, times.st_mtime_ns))  # cp -p
    again = datamodule(tmp_path, root)
    again.setup("fit")
    changed = [i for i in range(6) if first.images[i].numpy().tobytes() != again.images[i].numpy().tobytes()]
    assert len(changed) == 1 and again.images[changed[0]].numpy().tobytes() == \
        pictures(seed=1)[1].transpose(2, 0, 1).tobytes()


def test_image_folder_metadata_edited_keeping_its_time_gives_the_new_labels(tmp_path: Path):
    root = formats.folder(tmp_path / "images", pictures(), LABELS)
    metadata = root / "metadata.jsonl"
    rows = lambda kinds: "".join(json.dumps({"file_name": f"class{label}/{i:04d}.png", "kind": kind}) + "\n"
                                 for i, (label, kind) in enumerate(zip(LABELS, kinds)))
    metadata.write_text(rows([0, 1, 2, 3, 4, 5]))
    options = ("data.labels=true", "data.label_key=kind", f"data.root={tmp_path / 'prepare'}")
    first = datamodule(tmp_path, root, *options)
    first.setup("fit")
    times = metadata.stat()
    metadata.write_text(rows([5, 4, 3, 2, 1, 0]))
    os.utime(metadata, ns=(times.st_atime_ns, times.st_mtime_ns))
    again = datamodule(tmp_path, root, *options)
    again.setup("fit")
    assert again.image_labels.tolist() == first.image_labels.flip(0).tolist()
    assert not list((tmp_path / "prepare").iterdir())  # datasets' preparation is not kept


def test_an_image_folder_skips_and_counts_bad_images_and_is_not_written_to(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    root = formats.folder(tmp_path / "images", pictures(), LABELS)
    (root / "class0" / "broken.png").write_bytes(b"\x89PNG cut short")
    before = sorted(root.rglob("*"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    dm = datamodule(tmp_path, root, "data.labels=true")
    with pytest.warns(UserWarning, match=r"skipped 1 images of data.name=.*images data.split=train .*: row 2 \(.*class0/broken.png\)"):
        dm.setup("fit")
    assert len(dm.images) == 6 and dm.classes == ["class0", "class1", "class2"]
    assert sorted(root.rglob("*")) == before and not list((tmp_path / "work").iterdir())
    (root / "metadata.jsonl").write_text("{not json\n")
    refused(tmp_path, root, match=r"cannot be read as an image folder by datasets \(ArrowInvalid")


@pytest.mark.slow
def test_train_py_with_a_hub_id_offline_prints_one_line_and_fails(tmp_path: Path):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HTTPS_PROXY": "http://127.0.0.1:9",
                   "HTTP_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "data=huggingface",
                           "data.name=huggan/flowers-102-categories", f"data.root={tmp_path / 'hub'}",
                           f"paths.data_dir={tmp_path}", "trainer.accelerator=cpu"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data.name=huggan/flowers-102-categories data.split=train cannot be loaded "
                           "(HF_HUB_OFFLINE is set"), last
