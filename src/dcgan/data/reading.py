"""Reading a user's files without surprises: what a directory entry is, told before anything
opens it (opening a FIFO blocks until a writer comes, a device may act on being opened), regular
files opened only, and a digest of their content, which a folder's cache key is made of."""

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

WHOLE = 1 << 17  # files up to 128 KiB (about every image of 256x256 or less) are hashed whole
BLOCK = 1 << 16  # of a larger one, its first and last 64 KiB, with its size and times
KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device",
         stat.S_IFDIR: "a folder"}


class NotAFile(OSError):
    """An entry named like an image that is not a regular file (nothing opened it)."""

    def __init__(self, path: Path, what: str):
        super().__init__(f"{path} is {what}")
        self.what = what


def kind(path: Path) -> str | None:
    """What path is when it is not a regular file that can be opened (None when it is), from one
    stat, so that nothing opens a FIFO, socket or device: 'a FIFO', 'a link to nothing', ..."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:  # the link's target, or a folder on the way, is missing or unreachable
        if error.errno == errno.ENOENT and os.path.islink(path):
            return "a link to nothing"
        return "a link loop" if error.errno == errno.ELOOP else f"not readable ({error.strerror})"
    return None if stat.S_ISREG(mode) else KINDS.get(stat.S_IFMT(mode), "not a file")


def open_fd(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor of path opened for reading, and its stat, when it is a regular file; else
    NotAFile saying what it is."""
    if what := kind(path):
        raise NotAFile(path, what)
    # O_NONBLOCK: should the entry have become a FIFO since the stat, the open still returns
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise NotAFile(path, "no longer a regular file")
    return fd, status


def open_file(path: Path) -> BinaryIO:
    """path opened for reading when it is a regular file; else NotAFile saying what it is."""
    return os.fdopen(open_fd(path)[0], "rb")


def fingerprint(path: Path) -> bytes:
    """What a folder's cache key holds of one file: its size and its content (all of it up to WHOLE
    bytes; above, a hash of the first and last BLOCK bytes with the modification and change times,
    which every write through the kernel sets); or, for an entry that cannot be read, why."""
    try:
        fd, status = open_fd(path)
    except NotAFile as error:
        return f"skipped: {error.what}".encode()
    except OSError as error:  # skipped when decoded; the key changes once it can be read
        return f"unread: {error.strerror}".encode()
    try:
        if status.st_size <= WHOLE:
            return f"{status.st_size} ".encode() + os.read(fd, WHOLE + 1)
        ends = os.pread(fd, BLOCK, 0) + os.pread(fd, BLOCK, status.st_size - BLOCK)
        return f"{status.st_size} {status.st_mtime_ns} {status.st_ctime_ns} ".encode() + hashlib.sha1(ends).digest()
    except OSError as error:
        return f"unread: {error.strerror}".encode()
    finally:
        os.close(fd)


def content_digest(root: Path, files: list[Path]) -> str:
    """A key over each file's name (relative to root) and fingerprint: it changes whenever a file's
    pixels may have, whatever its times say (cp -p and rsync -a keep them)."""
    digest = hashlib.sha1()
    for path in files:
        mark = fingerprint(path)
        digest.update(b"%d %s\0%s\n" % (len(mark), os.fsencode(path.relative_to(root)), mark))
    return digest.hexdigest()
