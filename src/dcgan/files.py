"""Writing files so that readers see the old version or the new one, never a part of it."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside target (named by this process, so that ranks writing the
    same file do not collide); once the block succeeds, it replaces target in one step."""
    partial = target.with_name(f"{target.name}.partial{os.getpid()}")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        if partial.exists():  # the block failed: leave no debris
            partial.unlink()


def copy_atomically(source: Path, target: Path) -> None:
    with replaced_atomically(target) as partial:
        shutil.copyfile(source, partial)


def link_atomically(source: Path, target: Path) -> None:
    """target becomes another name of source's file (no copy, no space), or a copy where the
    filesystem has no hard links. Only for a source that is replaced, never rewritten in place."""
    with replaced_atomically(target) as partial:
        try:
            os.link(source, partial)
        except OSError:  # EXDEV, EPERM, ENOTSUP: a filesystem without hard links
            shutil.copyfile(source, partial)
