"""Crash-safe file writes: a file is either its old self or its new self, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO


def _file_mode() -> int:
    """0666 less the umask: what `open()` would give (mkstemp makes files private, 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()  # read once, at import, before any thread exists


@contextlib.contextmanager
def atomic_writer(target: Path, mode: str = "wb") -> Iterator[IO[bytes]]:
    """Write to a temporary file beside `target`, fsync, then rename over it.

    On any exception (Ctrl-C included) the temporary file is removed and
    `target` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str | None = None) -> Iterator[Path]:
    """Like `atomic_writer`, for files another program writes (ffmpeg): yields a temporary path.

    `suffix` keeps the extension tools infer the format from (default: the target's).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    ext = target.suffix if suffix is None else suffix
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{ext}", dir=target.parent)
    os.fchmod(fd, _FILE_MODE)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_writer(target) as f:
        f.write(data)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_lines(path: Path, lines: Sequence[str], comment: str) -> bool:
    """Append to a text file (`.gitignore`, `.gitattributes`) the lines it lacks, under a comment.

    A line counts as present whatever its spacing; False (and the file untouched) when all are.
    """
    try:
        existing = path.read_text("utf-8")
    except FileNotFoundError:
        existing = ""
    present = {tuple(line.split()) for line in existing.splitlines()}
    missing = [line for line in lines if tuple(line.split()) not in present]
    if not missing:
        return False
    separator = "\n" if existing and not existing.endswith("\n") else ""
    block = "".join(f"# {c}\n" for c in comment.splitlines()) + "".join(f"{line}\n" for line in missing)
    atomic_write_bytes(path, (existing + separator + block).encode("utf-8"))
    return True
