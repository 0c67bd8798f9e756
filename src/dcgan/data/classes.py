"""Class labels from an image folder's layout, torchvision ImageFolder's convention: an image's
class is the first-level subfolder it is in (at any depth below it)."""

import warnings
from pathlib import Path

from dcgan.data.source import shown
from dcgan.errors import UsageError


def folder_classes(root: Path, files: list[Path]) -> list[str]:
    """The first-level subfolders of root that hold images, sorted; a flat folder is one class.
    Subfolders without images are not classes (one warning names them)."""
    tops = {path.relative_to(root).parts[0] if path.parent != root else None for path in files}
    if None in tops and len(tops) > 1:
        raise UsageError(f"data.root={shown(root)} has images both at its top level and in subfolders: with data.labels=true "
                         "each image's class is its subfolder, so move the top-level ones into a class folder")
    classes = sorted(tops - {None}) or [root.name]
    empty = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in classes)
    if empty and classes != [root.name]:
        warnings.warn(f"data.root={shown(root)}: {', '.join(map(shown, empty))} hold no images, so they are not classes", stacklevel=2)
    return classes


def class_of(root: Path, path: Path, classes: dict[str, int]) -> int:
    """The index of path's class, by its folder's name (0 in a flat folder)."""
    return 0 if path.parent == root else classes[path.relative_to(root).parts[0]]
