"""Assets: local files and https URLs referenced by a storyboard.

A local file must resolve (symlinks included) inside the project root, so a
storyboard from an untrusted branch can't send `~/.ssh/id_rsa` to a third
party.  Files are checked as Kling documents its inputs, before anything is
sent, and hashed once per run, streaming, for the content key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from storyc.diagnostics import Diagnostics
from storyc.files import FileSource
from storyc.files import sha256_file as sha256_file  # where it used to be
from storyc.model import AssetRef, Storyboard

MediaKind = Literal["image", "video"]

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_VIDEO_BYTES = 200 * 1024 * 1024
MIN_IMAGE_SIDE = 300
MAX_ASPECT = 2.5
_VIDEO_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


@dataclass(frozen=True, slots=True)
class LocalFile:
    written: str  # the path as it appears in compiled arguments (relative, posix)
    path: Path  # absolute, symlinks resolved
    sha256: str  # "sha256:<hex>" of the bytes
    size: int
    mtime_ns: int
    media: MediaKind

    @property
    def content_type(self) -> str:
        suffix = self.path.suffix.lower()
        return {
            ".png": "image/png",
            ".jpg": "image/jpeg",
            ".jpeg": "image/jpeg",
            ".mp4": "video/mp4",
            ".mov": "video/quicktime",
        }.get(suffix, "application/octet-stream")


def normalize(value: str) -> str:
    """How a local path appears in compiled arguments: relative, '/'-separated."""
    return PurePosixPath(value.replace("\\", "/")).as_posix()


class Assets:
    """Checks and hashes every asset of one board, each file once."""

    def __init__(self, board: Storyboard, diags: Diagnostics) -> None:
        self.board = board
        self.doc = board.doc
        self.diags = diags
        self.fs = board.doc.files  # the disk, or a git revision (`storyc diff`)
        self.root = self.fs.resolve(board.root)
        self.files: dict[str, LocalFile] = {}  # by `written`
        self._problems: dict[tuple[str, MediaKind], str | None] = {}

    def check(self, ref: AssetRef, media: MediaKind) -> str | None:
        """The value for the request (URL or relative path), or None after an error."""
        problem = self._problem(ref.value, media)
        if problem is not None:
            self.diags.error(self.doc.loc(ref.path), problem)
            return None
        return ref.value if ref.is_url else normalize(ref.value)

    def check_all(self) -> None:
        """Check every declared asset, used or not: a broken file is reported at its line."""
        for character in self.board.characters.values():
            for ref in character.assets:
                self.check(ref, "video" if ref is character.video else "image")
        for style in self.board.styles.values():
            self.check(style.image, "image")
        for scene in self.board.scenes:
            for ref in scene.assets:
                self.check(ref, "image")

    def _problem(self, value: str, media: MediaKind) -> str | None:
        key = (value, media)
        if key not in self._problems:
            self._problems[key] = self._url_problem(value) if "://" in value else self._file_problem(value, media)
        return self._problems[key]

    @staticmethod
    def _url_problem(value: str) -> str | None:
        if value.startswith("https://") and len(value) > len("https://"):
            return None
        return f"'{value}': an asset is a local path or an https:// URL"

    def _file_problem(self, value: str, media: MediaKind) -> str | None:
        written = normalize(value)
        if value.startswith(("/", "~")) or PurePosixPath(written).is_absolute() or ":" in written[:3]:
            return f"'{value}': use a path relative to the storyboard, so the board works on every machine"
        target = self.fs.resolve(self.board.base_dir / written)
        if not target.is_relative_to(self.root):
            return f"'{value}' resolves outside the project root ({self.root}); assets must live inside it"
        try:
            stat = self.fs.stat(target)
        except FileNotFoundError:
            return f"file not found: {value}"
        except OSError as exc:
            return f"cannot read '{value}': {exc.strerror}"
        if not stat.is_file:
            return f"'{value}' is not a file"
        check = _check_image if media == "image" else _check_video
        problem = check(self.fs, target, value, stat.size)
        if problem is None:
            self.files[written] = LocalFile(
                written=written,
                path=target,
                sha256=self.fs.sha256(target),
                size=stat.size,
                mtime_ns=stat.mtime_ns,
                media=media,
            )
        return problem


def _check_image(fs: FileSource, path: Path, value: str, size: int) -> str | None:
    from PIL import Image, UnidentifiedImageError

    if size > MAX_IMAGE_BYTES:
        return f"image '{value}' is {size / 1e6:.1f} MB; Kling accepts at most 10 MB"
    try:
        with fs.open(path) as f, Image.open(f) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError):
        return f"'{value}' is not a readable image (JPEG or PNG expected)"
    if kind not in ("JPEG", "PNG"):
        return f"image '{value}' is {kind}; Kling accepts JPEG or PNG"
    if min(width, height) < MIN_IMAGE_SIDE:
        return f"image '{value}' is {width}x{height}; Kling needs at least {MIN_IMAGE_SIDE} px on each side"
    if max(width / height, height / width) > MAX_ASPECT:
        return f"image '{value}' is {width}x{height}; Kling accepts aspect ratios between 1:2.5 and 2.5:1"
    return None


def _check_video(fs: FileSource, path: Path, value: str, size: int) -> str | None:
    if size > MAX_VIDEO_BYTES:
        return f"video '{value}' is {size / 1e6:.0f} MB; Kling accepts at most 200 MB"
    head = fs.head(path, 12)
    if len(head) < 8 or head[4:8] not in _VIDEO_ATOMS:
        return f"'{value}' is not an MP4 or MOV video"
    return None
