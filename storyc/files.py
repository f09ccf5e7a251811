"""Where a board's files come from: the local disk, or a git revision (`storyc diff`).

The pipeline reads every input of a compile (the board, its template files,
its local assets) through a `FileSource`, with absolute paths.  `LOCAL` is
the disk, as before; `storyc.review.gitfs.GitTree` serves the same paths from a
commit's tree, so a revision compiles without a checkout.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class FileInfo:
    size: int
    mtime_ns: int  # 0 where there is no such thing (a git blob)
    is_file: bool
    kind: str = "a regular file"  # what it is, for messages: "a folder", "a named pipe (FIFO)", ...


def kind_of(mode: int) -> str:
    """What a file of this `st_mode` is, in words."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class NotARegularFile(OSError):
    """A FIFO, device, socket or folder where storyc reads a file: refused before it is opened.

    Opening a FIFO blocks until someone writes to it, and reading a device
    (`/dev/zero`) never ends: storyc reads regular files only.
    """

    def __init__(self, path: Path, mode: int) -> None:
        self.kind = kind_of(mode)
        super().__init__(errno.EINVAL, f"not a regular file: it is {self.kind}", str(path))


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading; `NotARegularFile` for anything else, without blocking.

    The kind is checked before opening (opening a device can have effects),
    and again on the open descriptor, so a file swapped for a FIFO in between
    still can't block: the open itself does not wait (O_NONBLOCK).
    """
    _require_regular(path, path.stat().st_mode)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        _require_regular(path, os.fstat(fd).st_mode)
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _require_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotARegularFile(path, mode)


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file; with `limit`, `FileTooLarge` beyond it (never reading more)."""
    with open_regular(path) as f:
        if limit is None:
            return f.read()
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(path, limit)
    return data


class FileTooLarge(OSError):
    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes", str(path))


class FileSource(Protocol):
    """Read-only access to a project's files by absolute path (errors as `OSError`, like the disk)."""

    def resolve(self, path: Path) -> Path:
        """The absolute path with symlinks resolved, like `Path.resolve()` (missing parts kept as written)."""
        ...

    def stat(self, path: Path) -> FileInfo:
        """Size and kind of a file, following symlinks; `FileNotFoundError` when there is none."""
        ...

    def read_bytes(self, path: Path) -> bytes: ...

    def open(self, path: Path) -> BinaryIO:
        """A binary file object (for Pillow); the caller closes it."""
        ...

    def head(self, path: Path, size: int) -> bytes:
        """The first `size` bytes (or fewer)."""
        ...

    def sha256(self, path: Path) -> str:
        """'sha256:<hex>' of the bytes."""
        ...

    def project_root(self, start: Path) -> Path:
        """The project root for a board in `start`: assets and templates may not resolve outside it."""
        ...


def sha256_file(path: Path) -> str:
    with open_regular(path) as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()  # type: ignore[arg-type]  # a real file


def read_text(files: FileSource, path: Path) -> str:
    """UTF-8 text with universal newlines, as `Path.read_text` reads it."""
    text = files.read_bytes(path).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def find_project_root(start: Path) -> Path:
    """The enclosing git work tree, else the storyboard's own folder."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


class LocalFiles:
    """The local disk: what every command but `diff` compiles from."""

    def resolve(self, path: Path) -> Path:
        return path.resolve()

    def stat(self, path: Path) -> FileInfo:
        st = path.stat()
        return FileInfo(st.st_size, st.st_mtime_ns, stat.S_ISREG(st.st_mode), kind_of(st.st_mode))

    def read_bytes(self, path: Path) -> bytes:
        return read_regular(path)

    def open(self, path: Path) -> BinaryIO:
        return open_regular(path)

    def head(self, path: Path, size: int) -> bytes:
        with open_regular(path) as f:
            return f.read(size)

    def sha256(self, path: Path) -> str:
        return sha256_file(path)

    def project_root(self, start: Path) -> Path:
        return find_project_root(start)


LOCAL: FileSource = LocalFiles()
