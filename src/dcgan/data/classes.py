"""Class labels: an image folder's from its layout, torchvision ImageFolder's convention (an image's
class is the first-level subfolder it is in, at any depth below it), and any source's checked
against its class names before they train."""

import warnings
from pathlib import Path

from dcgan.data.source import Source, shown
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


def checked_labels(source: Source) -> list[int]:
    """Each record's class, refused unless it is an index into the source's classes: a label its
    format allows (negative, past the class names, not a number) would train a class that is not there."""
    labels, count = source.labels() or [], len(source.classes)
    for index, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < count:
            raise UsageError(f"{source.where}: {shown(source.name(index))} has the class label {label!r}, which is "
                             f"none of its {count} classes (0 to {count - 1}): fix its label, or train without "
                             "labels (data.labels=false)")
    if len(labels) != len(source):
        raise UsageError(f"{source.where} has {len(labels)} class labels for its {len(source)} images: its label "
                         "file is damaged or belongs to other data; replace it, or train without labels (data.labels=false)")
    return labels


def kept_labels(source: Source, good: list[int]) -> list[int]:
    """The checked classes of the records in good (those that can be decoded), refused when a class
    loses every image: it would be a class the model is asked for but never sees."""
    every = checked_labels(source)
    labels = [every[index] for index in good]
    if lost := set(every) - set(labels):
        unreadable = sorted(source.classes[label] for label in lost)
        raise UsageError(f"{source.where}: no image of class {', '.join(unreadable)} can be read: "
                         "fix them, or leave the class out")
    return labels
