"""The compile cache, under `.storyc/compile/` beside the storyboard.

A repeated `check`/`compile` of an unchanged board should cost little more
than start-up.  An entry is keyed by the bytes of the board (plus storyc's
version, the endpoint files and the display path) and records every other
input: template files by their bytes, asset files by stat (size, mtime,
inode, resolved path) the way git's index does.  Any difference is a miss.
Only successful compiles are cached, so a missing file is always re-checked.

A miss (an edited prompt) checks every asset again, and reading each file to
its end to know it is whole costs a decode (a video: ffmpeg).  So the verdict
"decodes whole" is kept apart, by the file's content hash, under `whole/`:
an unchanged file is decoded once, whatever happens to the board around it.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from storyc import __version__
from storyc.compile import endpoints
from storyc.compile.assets import LocalFile, MediaKind
from storyc.compile.compiler import CompiledBoard, CompileResult, Edge, Job, StillJob
from storyc.compile.source import MAX_BOARD_BYTES
from storyc.compile.validate import MAX_TEMPLATE_FILE_BYTES
from storyc.compile.view import SceneView
from storyc.diagnostics import Diagnostic
from storyc.files import find_project_root, read_regular
from storyc.fsutil import atomic_write_bytes, contained_or_none

# 2: Job.view carries field locations; 3: diagnostics reworded; 4: Job.view is a SceneView; 5: profiles;
# 6: Job.cost_usd is the exact product of price and seconds, no longer rounded to cents;
# 7: stills, and each step's upstreams (depends_on); 8: a step's files carry their content type, read from their bytes;
# 9: diagnostics carry their rule code, help, width and profiles
FORMAT = 9


def cache_dir(board: Path) -> Path:
    return board.parent / ".storyc" / "compile"


def _usable_cache_dir(board: Path) -> Path | None:
    """The cache folder, or None when it leads out of the board's folder (a symbolic `.storyc`): then
    there is no cache, neither read (entries from elsewhere) nor written."""
    return contained_or_none(board.parent, ".storyc/compile")


class WholeFolder:
    """`assets.WholeFiles` on disk: one empty file per content found whole, named by its hash.

    The name also holds storyc's version (a later storyc may check more) and
    the media the file was decoded as.  Writing is best effort: a read-only
    checkout decodes again next time, as it compiles again.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _marker(self, sha256: str, media: MediaKind) -> Path:
        name = hashlib.sha256(f"{FORMAT}\0{__version__}\0{media}\0{sha256}".encode()).hexdigest()
        return self.folder / name[:40]

    def known(self, sha256: str, media: MediaKind) -> bool:
        return self._marker(sha256, media).is_file()

    def remember(self, sha256: str, media: MediaKind) -> None:
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self._marker(sha256, media), b"")


def whole_files(board: Path) -> WholeFolder | None:
    """Where this board's verdicts "whole" are kept; None where the cache folder is not usable."""
    folder = _usable_cache_dir(board)
    return None if folder is None else WholeFolder(folder / "whole")


def _entry_path(board: Path, display: str, board_bytes: bytes, profile: str | None) -> Path | None:
    h = hashlib.sha256()
    # None (the board's default profile) can't collide with a name: names start with a letter
    asked = "\0default" if profile is None else profile
    for part in (str(FORMAT), __version__, str(board.resolve()), display, str(find_project_root(board.parent)), asked):
        h.update(part.encode() + b"\0")
    for endpoint in endpoints.catalog().values():
        h.update(endpoint.source_bytes)
    h.update(board_bytes)
    folder = _usable_cache_dir(board)
    return None if folder is None else folder / f"{h.hexdigest()[:32]}.json"


def _stat_signature(path: Path) -> list[Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, str(path.resolve())]


def lookup(board: Path, display: str, profile: str | None = None) -> CompileResult | None:
    with _gc_paused():
        return _lookup(board, display, profile)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding an entry makes only acyclic containers: cyclic GC passes over them are pure
    cost (about half a large board's lookup), and reference counting frees them all anyway."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _lookup(board: Path, display: str, profile: str | None) -> CompileResult | None:
    try:
        # Read with the loader's limits: a board swapped for a FIFO must not block here, nor a huge one load twice.
        path = _entry_path(board, display, read_regular(board, MAX_BOARD_BYTES), profile)
        if path is None:
            return None
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    try:
        if not _inputs_unchanged(board, entry["inputs"]):
            return None
        return _decode(entry["result"])
    except (KeyError, TypeError, ValueError):
        return None  # an old or damaged entry is just a miss


def _inputs_unchanged(board: Path, inputs: dict[str, Any]) -> bool:
    for name, digest in inputs["templates"].items():
        try:
            if hashlib.sha256(read_regular(Path(name), MAX_TEMPLATE_FILE_BYTES)).hexdigest() != digest:
                return False
        except OSError:
            return False
    base = board.parent
    return all(_stat_signature(base / written) == sig for written, sig in inputs["assets"].items())


def store(board: Path, display: str, result: CompileResult, profile: str | None = None) -> None:
    if result.board is None:
        return
    try:
        board_bytes = read_regular(board, MAX_BOARD_BYTES)
        inputs = {"templates": _template_digests(result), "assets": _asset_signatures(board, result.board)}
        entry = {"inputs": inputs, "result": _encode(result)}
        target = _entry_path(board, display, board_bytes, profile)
        if target is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, json.dumps(entry, separators=(",", ":")).encode())
    except OSError:
        return  # a read-only checkout just doesn't cache


def _template_digests(result: CompileResult) -> dict[str, str]:
    assert result.board is not None
    digests: dict[str, str] = {}
    for name in result.board.template_files:
        with contextlib.suppress(OSError):
            digests[name] = hashlib.sha256(read_regular(Path(name), MAX_TEMPLATE_FILE_BYTES)).hexdigest()
    return digests


def _asset_signatures(board: Path, compiled: CompiledBoard) -> dict[str, Any]:
    signatures: dict[str, Any] = {}
    for written in compiled.asset_files:
        signatures[written] = _stat_signature(board.parent / written)
    return signatures


def _encode(result: CompileResult) -> dict[str, Any]:
    board = result.board
    assert board is not None
    return {
        "diagnostics": [d.to_record() for d in result.diagnostics],
        "storyboard": board.storyboard,
        "path": str(board.path),
        "title": board.title,
        "template_files": list(board.template_files),
        "asset_files": list(board.asset_files),
        "profile": board.profile,
        "profiles": list(board.profiles),
        "default_profile": board.default_profile,
        "jobs": [
            {
                **job.to_json(graph=True),
                "cost_usd": str(job.cost_usd),
                "files": {k: _encode_file(f) for k, f in job.files.items()},
                "view": job.view.to_json(),
            }
            for job in board.jobs
        ],
        "stills": [
            {
                **still.to_json(),
                "cost_usd": str(still.cost_usd),
                "price_notes": list(still.price_notes),
                "segments": [list(seg) for seg in still.segments],
                "files": {k: _encode_file(f) for k, f in still.files.items()},
            }
            for still in board.stills
        ],
    }


def _encode_file(f: LocalFile) -> dict[str, Any]:
    return {
        "written": f.written,
        "path": str(f.path),
        "sha256": f.sha256,
        "size": f.size,
        "mtime_ns": f.mtime_ns,
        "media": f.media,
        "content_type": f.content_type,
    }


def _decode(data: dict[str, Any]) -> CompileResult:
    decode_files = _FileDecoder()
    jobs = tuple(
        Job(
            scene=j["scene"],
            endpoint=j["endpoint"],
            arguments=j["arguments"],
            references=j["references"],
            seconds=j["seconds"],
            cost_usd=Decimal(j["cost_usd"]),
            key=j["key"],
            files=decode_files(j["files"]),
            view=SceneView.from_json(j["view"]),
            depends_on=tuple(Edge.from_json(e) for e in j["depends_on"]),
        )
        for j in data["jobs"]
    )
    stills = tuple(
        StillJob(
            still=s["still"],
            endpoint=s["endpoint"],
            arguments=s["arguments"],
            references=s["references"],
            segments=tuple((str(text), None if name is None else str(name)) for text, name in s["segments"]),
            variants=s["variants"],
            pick=s["pick"],
            resolution=s["resolution"],
            cost_usd=Decimal(s["cost_usd"]),
            key=s["key"],
            price_notes=tuple(s["price_notes"]),
            files=decode_files(s["files"]),
            depends_on=tuple(Edge.from_json(e) for e in s["depends_on"]),
        )
        for s in data["stills"]
    )
    board = CompiledBoard(
        storyboard=data["storyboard"],
        path=Path(data["path"]),
        title=data["title"],
        jobs=jobs,
        stills=stills,
        template_files=tuple(data["template_files"]),
        asset_files=tuple(data["asset_files"]),
        profile=data["profile"],
        profiles=tuple(data["profiles"]),
        default_profile=data["default_profile"],
    )
    diagnostics = [Diagnostic.from_record(d) for d in data["diagnostics"]]
    return CompileResult(board, diagnostics, board.profiles)


class _FileDecoder:
    """Local files from an entry's records; scenes share a few dozen files, each decoded once (LocalFile is frozen)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], LocalFile] = {}

    def __call__(self, data: dict[str, Any]) -> dict[str, LocalFile]:
        return {k: self._one(f) for k, f in data.items()}

    def _one(self, record: dict[str, Any]) -> LocalFile:
        marker = (record["path"], record["sha256"])
        found = self._seen.get(marker)
        if found is None or _encode_file(found) != record:
            found = self._seen[marker] = LocalFile(**{**record, "path": Path(record["path"])})
        return found


def clear(board: Path) -> None:
    folder = _usable_cache_dir(board)
    if folder is None:
        return
    for pattern in ("*.json", "whole/*"):
        for entry in folder.glob(pattern):
            with contextlib.suppress(OSError):
                entry.unlink()
