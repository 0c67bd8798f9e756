"""Tiny datasets written in their tools' own on-disk formats, for the source tests: torchvision's
layouts (CIFAR's pickled batches, MNIST's idx files, STL10's binaries, CelebA's list files, an
LSUN LMDB), StyleGAN2-ADA's zip with dataset.json, and Hugging Face datasets. Each writer takes
images (N, H, W, C) uint8 and labels (N,) and returns what data.root / data.name should be."""

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def cifar(root: Path, images: np.ndarray, labels: np.ndarray, hundred: bool = False) -> Path:
    """root/cifar-10-batches-py (or cifar-100-python): rows of 3072 bytes, channel-major."""
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    key = "fine_labels" if hundred else "labels"
    batches = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in batches:  # every training batch holds the images once: the train split is 5x them
        part = (rows, labels) if name in ("train", "data_batch_1") else (rows[:0], labels[:0])
        (folder / name).write_bytes(pickle.dumps({"data": part[0], key: part[1].tolist()}))
    names = [f"class{i}" for i in range(100 if hundred else 10)]
    meta = {"fine_label_names": names} if hundred else {"label_names": names}
    (folder / ("meta" if hundred else "batches.meta")).write_bytes(pickle.dumps(meta))
    return root


def mnist(root: Path, images: np.ndarray, labels: np.ndarray, kind: str = "MNIST") -> Path:
    """root/<kind>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte: big-endian idx files."""
    raw = root / kind / "raw"
    raw.mkdir(parents=True)
    grey = images[..., 0]
    for split, count in (("train", len(images)), ("t10k", 0)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, count, 28, 28)
                                                        + grey[:count].tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, count)
                                                        + labels[:count].astype(np.uint8).tobytes())
    return root


def stl10(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """root/stl10_binary: images column-major (N, 3, 96, 96 transposed), labels 1-based bytes."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    binary = images.transpose(0, 3, 2, 1).tobytes()  # torchvision reads (N, 3, 96, 96) then swaps W and H
    for split in ("train", "test"):
        (folder / f"{split}_X.bin").write_bytes(binary)
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
    (folder / "unlabeled_X.bin").write_bytes(binary)
    (folder / "class_names.txt").write_text("".join(f"class{i}\n" for i in range(10)))
    (folder / "fold_indices.txt").write_text(" ".join(map(str, range(len(images)))) + "\n")
    return root


def celeba(root: Path, images: np.ndarray) -> Path:
    """root/celeba: img_align_celeba/*.jpg (PNG bytes here, which PIL reads alike) and the list files."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(images))]
    for name, image in zip(names, images):
        (folder / "img_align_celeba" / name).write_bytes(png(image))
    rows = lambda values: "".join(f"{name} {values}\n" for name in names)  # noqa: E731
    (folder / "list_eval_partition.txt").write_text(rows("0"))
    (folder / "identity_CelebA.txt").write_text(rows("1"))
    (folder / "list_bbox_celeba.txt").write_text(f"{len(names)}\nimage_id x_1 y_1 width height\n" + rows("0 0 8 8"))
    (folder / "list_landmarks_align_celeba.txt").write_text(f"{len(names)}\nheader\n" + rows(" ".join(["1"] * 10)))
    attributes = " ".join(f"attr{i}" for i in range(40))
    (folder / "list_attr_celeba.txt").write_text(f"{len(names)}\n{attributes}\n" + rows(" ".join(["1"] * 40)))
    return root


def lsun(root: Path, images: np.ndarray, category: str = "bedroom_train", corrupt: int | None = None) -> Path:
    """root/<category>_lmdb: keys to encoded images, as LSUN's own export; record `corrupt` holds no image."""
    import lmdb

    root.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(root / f"{category}_lmdb"), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i, image in enumerate(images):
            txn.put(f"{i:040d}".encode(), b"not an image" if i == corrupt else png(image))
    env.close()
    return root


def stylegan_zip(path: Path, images: np.ndarray, labels: np.ndarray | None, corrupt: int | None = None) -> Path:
    """StyleGAN2-ADA's dataset_tool.py layout: 00000/img00000000.png ..., and dataset.json."""
    names = [f"{i // 1000:05d}/img{i:08d}.png" for i in range(len(images))]
    with zipfile.ZipFile(path, "w") as archive:
        for i, (name, image) in enumerate(zip(names, images)):
            archive.writestr(name, b"\x89PNG broken" if i == corrupt else png(image))
        labels_json = None if labels is None else [[name, int(label)] for name, label in zip(names, labels)]
        archive.writestr("dataset.json", json.dumps({"labels": labels_json}))
    return path


def folder(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """root/<label>/<index>.png: torchvision ImageFolder's layout."""
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / f"class{label}").mkdir(parents=True, exist_ok=True)
        (root / f"class{label}" / f"{i:04d}.png").write_bytes(png(image))
    return root


def huggingface(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """A `datasets` dataset with an Image and a ClassLabel column, written by save_to_disk."""
    import datasets

    features = datasets.Features({"picture": datasets.Image(),
                                  "kind": datasets.ClassLabel(names=[f"class{i}" for i in range(10)])})
    rows = {"picture": [Image.open(io.BytesIO(png(image))) for image in images], "kind": labels.tolist()}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(path))
    return path
