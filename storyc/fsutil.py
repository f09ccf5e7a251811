"""Crash-safe file writes: a file is either its old self or its new self, never half.

Also what a user is told when the disk refuses a write (`write_failure`), and where
storyc may write at all (`contained`: nothing through a symbolic link that leaves
the board's folder).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from storyc.diagnostics import Diagnostic, StorycError

# The refusals that are the disk's (full, over quota, mounted read-only), never a bug in storyc:
# the CLI's error boundary reports them as a located error, exit 1.
DISK_REFUSALS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


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
    `target` is left as it was.  A write the disk refuses (`DISK_REFUSALS`) names `target`.
    """
    with _naming(target):
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
    with _naming(target):
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


@contextlib.contextmanager
def _naming(target: Path) -> Iterator[None]:
    """A write the disk refused names the file the user asked for: a failed write() names no file at
    all, and the temporary one beside `target` means nothing to a user."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_REFUSALS and not _names_a_folder(exc, target):
            exc.filename = str(target)
        raise


def _names_a_folder(exc: OSError, target: Path) -> bool:
    """True when `exc` is about a folder of `target` (a mkdir on a read-only disk): the more exact place."""
    return exc.filename is not None and Path(os.fsdecode(exc.filename)) in target.parents


def write_failure(exc: OSError) -> StorycError:
    """What a user is told about a failed write: `board.lock: error: could not be written: no space left on device`.

    Located at the file the error names (the atomic writers name their target); the reason in words.
    """
    message = f"could not be written: {in_words(exc)}"
    if exc.filename is None:
        return StorycError(message)
    return StorycError.at(os.fsdecode(exc.filename), None, None, message)


def why_not_written(exc: OSError) -> str:
    """`renders/meet-1a2b.mp4: no space left on device`: the file the error names, if any, and why."""
    where = f"{os.fsdecode(exc.filename)}: " if exc.filename is not None else ""
    return f"{where}{in_words(exc)}"


def in_words(exc: OSError) -> str:
    """The disk's refusals in words (`no space left on device`), anything else as the system says it."""
    return DISK_REFUSALS.get(exc.errno or 0) or exc.strerror or str(exc)


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


# --- where storyc writes: nothing through a symbolic link out of the board's folder ---------------


class OutsideTheBoard(StorycError):
    """A path storyc would write beside a board resolves, through a symbolic link, somewhere else."""

    def __init__(self, target: Path, reason: str) -> None:
        self.reason = reason
        message = f"not written: {reason}; storyc writes nothing through a symbolic link out of the board's folder"
        super().__init__(message, diagnostics=[Diagnostic(str(target), None, "error", message)])


def contained(board_dir: Path, relative: str) -> Path:
    """`board_dir / relative`, or `OutsideTheBoard` when it resolves outside `board_dir/<its first folder>`.

    What storyc keeps beside a board (`renders/`, `.storyc/`) must stay there. A symbolic link could
    send it anywhere: one a checkout brought (git commits links, ignored paths or not), or one a lock
    from another branch leads through, and storyc can't tell it from one the user made. Checked
    before anything is created, so a link to a folder that does not exist yet is refused too.
    """
    parts = PurePosixPath(relative).parts
    folder = board_dir.resolve() / parts[0]
    target = board_dir.joinpath(*parts)
    resolved = target.resolve()
    if not resolved.is_relative_to(folder):
        reason = f"it resolves to {resolved}, outside {folder} (is {parts[0]}/ a symbolic link?)"
        raise OutsideTheBoard(target, reason)
    return target


def contained_or_none(board_dir: Path, relative: str) -> Path | None:
    """`contained`, with None for a path outside: for what is simply skipped then (a cache, a clean-up)."""
    try:
        return contained(board_dir, relative)
    except OutsideTheBoard:
        return None
