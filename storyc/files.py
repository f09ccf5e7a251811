"""Where a board's files come from: the local disk, or a git revision (`storyc diff`).

The pipeline reads every input of a compile (the board, its template files,
its local assets) through a `FileSource`, with absolute paths.  `LOCAL` is
the disk, as before; `storyc.gitfs.GitTree` serves the same paths from a
commit's tree, so a revision compiles without a checkout.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class FileInfo:
    size: int
    mtime_ns: int  # 0 where there is no such thing (a git blob)
    is_file: bool


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
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


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
        return FileInfo(st.st_size, st.st_mtime_ns, stat.S_ISREG(st.st_mode))

    def read_bytes(self, path: Path) -> bytes:
        return path.read_bytes()

    def open(self, path: Path) -> BinaryIO:
        return path.open("rb")

    def head(self, path: Path, size: int) -> bytes:
        with path.open("rb") as f:
            return f.read(size)

    def sha256(self, path: Path) -> str:
        return sha256_file(path)

    def project_root(self, start: Path) -> Path:
        return find_project_root(start)


LOCAL: FileSource = LocalFiles()
