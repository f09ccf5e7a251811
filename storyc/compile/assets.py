"""Assets: local files and https URLs referenced by a storyboard.

A local file must resolve (symlinks included) inside the project root, so a
storyboard from an untrusted branch can't send `~/.ssh/id_rsa` to a third
party.  Files are checked as Kling documents its inputs, before anything is
sent, and hashed once per run, streaming, for the content key.

An image's format is read from its bytes, never from its name (a `.png` that
is really a WebP is judged, and uploaded, as a WebP), and must be one the
endpoints take (`assets.image_formats` in their files: what fal's pages list).

A file whose header passes is then read to its end, as fal will read it: a
PNG's every chunk against its checksum, a JPEG's every entropy-coded byte,
every frame of a WebP, GIF or AVIF decoded, a video decoded by ffmpeg.  A
truncated download fails here, at the board's line, not after a paid render.
That costs a decode, so a file found whole is remembered by its content hash
(in-process, and in the compile cache's `WholeFiles` when the caller gives
one): an unchanged file is decoded once.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Literal, NamedTuple, Protocol

from storyc.compile.model import AssetRef, Storyboard
from storyc.diagnostics import ASSET, Diagnostics, printable
from storyc.files import FileSource, LocalFiles, NotARegularFile
from storyc.files import sha256_file as sha256_file  # where it used to be

if TYPE_CHECKING:
    from PIL.Image import Image

MediaKind = Literal["image", "video"]

# A URL scheme ("data:", "javascript:"); one letter is a Windows drive ("C:"), handled as a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")

# Kling's own limits on reference files are the endpoints' data (`endpoints.asset_limits()`).
# Kling documents no upper bound in pixels, only 10 MB (fal-facts 3.7), and a 10 MB PNG can hold a
# 12000x12000 image that decodes to 430 MB and more.  fal renders at most 3840x2160 (8.3 MP):
# 50 MP keeps every camera and phone photo (a 48 MP phone takes 8064x6048) and bounds a decode
# at 200 MB (RGBA).
MAX_IMAGE_PIXELS = 50_000_000
_VIDEO_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


class _Format(NamedTuple):
    """An image format an endpoint may take, under Pillow's name (as the endpoint files list them)."""

    name: str  # as a diagnostic says it
    content_type: str  # what an upload declares: fal's storage serves the file with it
    suffix: str  # what an uploaded file's name ends with


_FORMATS = {
    "JPEG": _Format("JPEG", "image/jpeg", ".jpg"),
    "PNG": _Format("PNG", "image/png", ".png"),
    "WEBP": _Format("WebP", "image/webp", ".webp"),
    "GIF": _Format("GIF", "image/gif", ".gif"),
    "AVIF": _Format("AVIF", "image/avif", ".avif"),
}

# Decoding a reference video (Kling takes 3 to 10 s, at most 200 MB) takes seconds; a file swapped
# for a FIFO after its stat would block ffmpeg's open forever.  Past this, the check gives up.
VIDEO_DECODE_TIMEOUT_S = 120
# ffmpeg's log prefix: "[h264 @ 0x55f5...] " (the address differs on every run), sometimes two.
_FFMPEG_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)+")


class WholeFiles(Protocol):
    """Where verdicts "this content decodes whole" are kept across runs (`storyc.compile.cache`).

    Only whole files are recorded: a damaged one is decoded, and reported, every time.
    """

    def known(self, sha256: str, media: MediaKind) -> bool: ...

    def remember(self, sha256: str, media: MediaKind) -> None: ...


# (content hash, media) of files decoded whole in this process: a board compiled once per
# profile, or an unchanged file named by two boards, is decoded once.
_decoded_whole: set[tuple[str, MediaKind]] = set()


@dataclass(frozen=True, slots=True)
class LocalFile:
    written: str  # the path as it appears in compiled arguments (relative, posix)
    path: Path  # absolute, symlinks resolved
    sha256: str  # "sha256:<hex>" of the bytes
    size: int
    mtime_ns: int
    media: MediaKind
    content_type: str  # from the bytes ("image/webp"), not the name: what an upload declares

    @property
    def upload_name(self) -> str:
        """The file's name with the suffix of its real format: `photo.png` holding a WebP is `photo.webp`."""
        import mimetypes

        name = PurePosixPath(self.written).name
        suffix = next((f.suffix for f in _FORMATS.values() if f.content_type == self.content_type), None)
        if suffix is None or mimetypes.guess_type(name)[0] == self.content_type:  # "a.jpeg" stays "a.jpeg"
            return name
        return f"{PurePosixPath(name).stem}{suffix}"


def normalize(value: str) -> str:
    """How a local path appears in compiled arguments: relative, '/'-separated."""
    return PurePosixPath(value.replace("\\", "/")).as_posix()


class Assets:
    """Checks and hashes every asset of one board, each file once."""

    def __init__(self, board: Storyboard, diags: Diagnostics, whole: WholeFiles | None = None) -> None:
        self.board = board
        self.doc = board.doc
        self.diags = diags
        self.fs = board.doc.files  # the disk, or a git revision (`storyc diff`)
        self.root = self.fs.resolve(board.root)
        self.files: dict[str, LocalFile] = {}  # by `written`
        self._problems: dict[tuple[str, MediaKind], str | None] = {}
        self.whole = whole

    def check(self, ref: AssetRef, media: MediaKind) -> str | None:
        """The value for the request (URL or relative path), or None after an error."""
        problem = self._problem(ref.value, media)
        if problem is not None:
            self.diags.error(ASSET, self.doc.loc(ref.path), problem)
            return None
        return ref.value if ref.is_url else normalize(ref.value)

    def check_all(self) -> None:
        """Check every declared asset, used or not: a broken file is reported at its line."""
        for character in self.board.characters.values():
            for ref in character.assets:
                self.check(ref, "video" if ref is character.video else "image")
        for style in self.board.styles.values():
            for ref in style.assets:
                self.check(ref, "image")
        for scene in self.board.scenes:
            for ref in scene.assets:
                self.check(ref, "image")

    def _problem(self, value: str, media: MediaKind) -> str | None:
        key = (value, media)
        if key not in self._problems:
            scheme = _SCHEME.match(value)
            if "://" in value or (scheme and scheme.group(1).lower() in _SCHEMES):
                self._problems[key] = self._url_problem(value)
            else:
                self._problems[key] = self._file_problem(value, media)
        return self._problems[key]

    @staticmethod
    def _url_problem(value: str) -> str | None:
        if value.startswith("https://") and len(value) > len("https://"):
            return None if "\0" not in value else f"'{printable(value)}': a URL can't contain NUL (\\0)"
        scheme = _SCHEME.match(value)
        if scheme and "://" not in value[: scheme.end() + 2]:
            name = scheme.group(1).lower()
            if name == "data":  # don't echo the (long) data itself
                return "data: URIs are not supported; use a file or an https URL"
            return f"'{printable(value[:80])}': {name}: URLs are not supported; use a file or an https URL"
        return f"'{printable(value)}': an asset is a local path or an https:// URL"

    def _file_problem(self, value: str, media: MediaKind) -> str | None:
        if "\0" in value:
            return f"'{printable(value)}': a path can't contain NUL (\\0)"
        written = normalize(value)
        if value.startswith(("/", "~")) or PurePosixPath(written).is_absolute() or ":" in written[:3]:
            return f"'{value}': use a path relative to the storyboard, so the board works on every machine"
        target = self.fs.resolve(self.board.base_dir / written)
        if not target.is_relative_to(self.root):
            return f"'{value}' resolves outside the project root ({self.root}); assets must live inside it"
        try:
            stat = self.fs.stat(target)
        except FileNotFoundError:
            return f"file not found: {value}{_nearby(target, written)}"
        except OSError as exc:
            return f"cannot read '{value}': {exc.strerror}"
        if not stat.is_file:
            if stat.kind in ("a folder", "a regular file"):
                return f"'{value}' is not a file"
            return f"'{value}' is not a regular file: it is {stat.kind}"  # never opened: a FIFO would block
        check = _check_image if media == "image" else _check_video
        try:
            checked = check(self.fs, target, value, stat.size)
        except NotARegularFile as exc:  # swapped for a FIFO or device since the stat
            return f"'{value}' is not a regular file: it is {exc.kind}"
        if isinstance(checked, Refused):
            return checked.why
        sha256 = self.fs.sha256(target)
        try:
            problem = self._damage(target, value, media, sha256)
        except NotARegularFile as exc:
            return f"'{value}' is not a regular file: it is {exc.kind}"
        if problem is None:
            self.files[written] = LocalFile(
                written=written,
                path=target,
                sha256=sha256,
                size=stat.size,
                mtime_ns=stat.mtime_ns,
                media=media,
                content_type=checked,
            )
        return problem

    def _damage(self, target: Path, value: str, media: MediaKind, sha256: str) -> str | None:
        """Why a file whose header passed is not whole, or None; a file known whole is not decoded again."""
        verdict = (sha256, media)
        if verdict in _decoded_whole or (self.whole is not None and self.whole.known(sha256, media)):
            return None
        decode = _image_damage if media == "image" else _video_damage
        problem = decode(self.fs, target, value)
        if problem is None:
            _decoded_whole.add(verdict)
            if self.whole is not None:
                self.whole.remember(sha256, media)
        return problem


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a file is refused by its header: the header checks' other answer (else the file's content type)."""

    why: str


def image_format(head: bytes) -> str | None:
    """The image format (Pillow's name) a file's first 16 bytes show, or None: from the bytes, never the name."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if head.startswith((b"II*\0", b"MM\0*")):
        return "TIFF"
    return None


def image_content_type(head: bytes) -> str | None:
    """What an upload of an image with these first 16 bytes declares ("image/png"), or None."""
    found = _FORMATS.get(image_format(head) or "")
    return found.content_type if found is not None else None


def open_image(f: BinaryIO) -> Image:
    """An image with only its header read (`.load()` decodes it), never refused for its size.

    Pillow's `Image.open` refuses images beyond its own pixel limit with
    `DecompressionBombError` (not an `OSError`); storyc checks pixel counts
    itself, against `MAX_IMAGE_PIXELS`, before anything is decoded, so the
    formats the endpoints take are opened by their own plugin.  Raises
    `OSError` for what is not a readable image.
    """
    import warnings

    from PIL import Image

    head = f.read(16)
    f.seek(0)
    try:
        plugin = _plugin(image_format(head))
        if plugin is not None:
            return plugin(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(f)
    except (SyntaxError, ValueError, Image.DecompressionBombError) as exc:  # how the format plugins fail
        raise OSError(f"not a readable image: {exc}") from exc


def _plugin(kind: str | None) -> Callable[[BinaryIO], Image] | None:
    """The Pillow class that opens `kind` without Pillow's own pixel limit, or None (Pillow then guesses)."""
    from PIL import GifImagePlugin, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

    if kind == "AVIF":
        from PIL import AvifImagePlugin  # Pillow 11.3 and later

        return AvifImagePlugin.AvifImageFile
    plugins: dict[str, Callable[[BinaryIO], Image]] = {
        "PNG": PngImagePlugin.PngImageFile,
        "JPEG": JpegImagePlugin.jpeg_factory,
        "WEBP": WebPImagePlugin.WebPImageFile,
        "GIF": GifImagePlugin.GifImageFile,
    }
    return plugins.get(kind or "")


def too_many_pixels(width: int, height: int) -> str | None:
    """Why an image this big is refused, or None."""
    if width * height <= MAX_IMAGE_PIXELS:
        return None
    return (
        f"{width}x{height}, {width * height / 1e6:.0f} megapixels; "
        f"storyc accepts at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels (scale it down)"
    )


def format_list(formats: tuple[str, ...]) -> str:
    """("JPEG", "PNG", "WEBP") -> "JPEG, PNG or WebP": the formats an endpoint takes, as a message names them."""
    names = [_format_name(f) for f in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _check_image(fs: FileSource, path: Path, value: str, size: int) -> Refused | str:
    """The image's content type, or why it is refused: its format (from its bytes), size, sides, aspect."""
    from storyc.compile.endpoints import asset_limits

    limits = asset_limits()
    accepted = format_list(limits.image_formats)
    if size > limits.image_max_bytes:
        return Refused(
            f"image '{value}' is {size / 1e6:.1f} MB; Kling accepts at most {_mb(limits.image_max_bytes)} MB"
        )
    sniffed = image_format(fs.head(path, 16))
    if sniffed is not None and sniffed not in limits.image_formats:  # TIFF: named without decoding it
        return _wrong_format(value, sniffed, accepted)
    try:
        with fs.open(path) as f, open_image(f) as image:
            kind, (width, height) = image.format, image.size
    except NotARegularFile:
        raise
    except OSError as exc:  # UnidentifiedImageError is one
        if sniffed is not None:  # its first bytes say which format: a WebP cut short fails to open at all
            return Refused(f"image '{value}' is truncated or damaged: {_decoder_words(exc.__cause__ or exc)}")
        return Refused(f"'{value}' is not a readable image ({accepted} expected)")
    if kind not in limits.image_formats:
        return _wrong_format(value, kind or "of an unknown format", accepted)
    big = too_many_pixels(width, height)
    if big is not None:
        return Refused(f"image '{value}' is {big}")
    if min(width, height) < limits.image_min_side:
        return Refused(
            f"image '{value}' is {width}x{height}; Kling needs at least {limits.image_min_side} px on each side"
        )
    if max(width / height, height / width) > limits.image_max_aspect:
        ratio = f"{limits.image_max_aspect:g}"
        return Refused(
            f"image '{value}' is {width}x{height}; Kling accepts aspect ratios between 1:{ratio} and {ratio}:1"
        )
    return _FORMATS[kind].content_type


def _format_name(kind: str) -> str:
    """How a message names a format: "WebP" for Pillow's "WEBP"; one no endpoint takes by Pillow's name ("TIFF")."""
    return _FORMATS[kind].name if kind in _FORMATS else kind


def _wrong_format(value: str, kind: str, accepted: str) -> Refused:
    return Refused(f"image '{value}' is {_format_name(kind)}; Kling accepts {accepted}")


def _image_damage(fs: FileSource, path: Path, value: str) -> str | None:
    """Why an image (of a format the endpoints take, within the pixel cap: checked already) is not whole, or None."""
    try:
        with fs.open(path) as f, open_image(f) as image:
            _read_whole(image)
    except NotARegularFile:
        raise
    except Exception as exc:  # a decoder fed damaged bytes fails in many ways (OSError, SyntaxError, ...)
        return f"image '{value}' is truncated or damaged: {_decoder_words(exc)}"
    return None


def _decoder_words(exc: BaseException) -> str:
    """What a decoder said of damaged bytes, printable (its words may quote them)."""
    return printable(str(exc)) or type(exc).__name__


def _read_whole(image: Image) -> None:
    """Read every byte of the image's data as its decoder does, in as little memory as it allows."""
    if image.format == "PNG":
        image.verify()  # every chunk against its CRC, through IEND: no pixel is inflated
    elif image.format == "JPEG":
        # decoding at 1/8 scale still entropy-decodes every byte, in 1/64 of the memory
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    else:  # WebP, GIF, AVIF: every frame of an animation decoded in turn (one canvas, within the pixel cap)
        for frame in range(getattr(image, "n_frames", 1)):
            image.seek(frame)
            image.load()


def _video_damage(fs: FileSource, path: Path, value: str) -> str | None:
    """Why a video is not whole, or None: ffmpeg decodes every stream, and any error it logs is damage.

    ffmpeg exits 0 over a file cut short in its last frames, logging the errors
    on stderr (at `-loglevel error`, stderr holds nothing else).
    """
    import subprocess

    from storyc.ffmpeg import quiet_command

    with _on_disk(fs, path) as local:
        try:
            command = quiet_command(["-i", f"file:{local}", "-f", "null", "-"])
            proc = subprocess.run(command, capture_output=True, timeout=VIDEO_DECODE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return f"video '{value}' could not be decoded in {VIDEO_DECODE_TIMEOUT_S} s; is it a regular video file?"
        except OSError as exc:
            return f"cannot check video '{value}': cannot run ffmpeg ({exc.strerror or exc})"
    errors = proc.stderr.decode("utf-8", "replace").replace(str(local), value).splitlines()
    if proc.returncode == 0 and not any(line.strip() for line in errors):
        return None
    return f"video '{value}' is truncated or damaged: {_ffmpeg_complaint(errors, proc.returncode)}"


def _ffmpeg_complaint(lines: list[str], returncode: int) -> str:
    """ffmpeg's words for what is wrong, without its log prefixes.

    The container's complaint ("stream 0, offset 0x674: partial file", "moov atom
    not found") says more than the decoder's that follows from it, so the first
    line from the input (prefix "[in#0...") wins over the first line.
    """
    from_input = [line for line in lines if line.startswith("[in#")]
    chosen = next((line for line in (*from_input, *lines) if line.strip()), "")
    return printable(_FFMPEG_PREFIX.sub("", chosen).strip()) or f"ffmpeg exit status {returncode}"


@contextlib.contextmanager
def _on_disk(fs: FileSource, path: Path) -> Iterator[Path]:
    """A path ffmpeg can open holding the file's bytes: the file itself, or a copy (a git revision's blob)."""
    if isinstance(fs, LocalFiles):
        yield path
        return
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="storyc-") as folder, fs.open(path) as source:
        copy = Path(folder) / f"asset{path.suffix}"
        with copy.open("wb") as target:
            shutil.copyfileobj(source, target)
        yield copy


def _mb(size: int) -> str:
    """10485760 -> "10": Kling's documents count in MiB and call them MB."""
    return f"{size / (1024 * 1024):g}"


_SCHEMES = frozenset(
    {"data", "javascript", "vbscript", "file", "blob", "about", "mailto", "tel", "ftp", "ftps", "sftp", "http", "https"}
    | {"ws", "wss", "s3", "gs", "ssh", "git", "chrome", "view-source", "content", "intent", "filesystem"}
)


def _check_video(fs: FileSource, path: Path, value: str, size: int) -> Refused | str:
    """The video's content type (a QuickTime brand is a MOV), or why it is refused."""
    from storyc.compile.endpoints import asset_limits

    max_bytes = asset_limits().video_max_bytes
    if size > max_bytes:
        return Refused(f"video '{value}' is {size / 1e6:.0f} MB; Kling accepts at most {_mb(max_bytes)} MB")
    head = fs.head(path, 12)
    if len(head) < 8 or head[4:8] not in _VIDEO_ATOMS:
        return Refused(f"'{value}' is not an MP4 or MOV video")
    return "video/quicktime" if head[4:12] == b"ftypqt  " else "video/mp4"


def _nearby(target: Path, written: str) -> str:
    """' (did you mean 'refs/milo-side.png'?)' when the folder holds a file of a close name (disk only)."""
    import difflib

    folder = target.parent
    try:
        names = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    except OSError:
        return ""
    # Close in name (a typo), same extension: "milo-sdie.png" finds "milo-side.png", "missing.png" nothing.
    stems = {Path(n).stem: n for n in names if Path(n).suffix.lower() == target.suffix.lower()}
    close = difflib.get_close_matches(target.stem, list(stems), n=1, cutoff=0.75)
    if not close:
        return ""
    prefix = written.rsplit("/", 1)[0] + "/" if "/" in written else ""
    return f" (did you mean '{prefix}{stems[close[0]]}'?)"
