"""The lock file (`board.lock` beside `board.yaml`): what every paid render produced.

    version: 1
    scenes:   {scene id: key}              # the board's scenes when the lock was last written
    renders:  {key: Render}                # every render paid for (scenes and stills), kept until `storyc gc`
    uploads:  {sha256 of bytes: Upload}    # local asset bytes -> fal storage URL, with its time

It is meant to be committed and reviewed, so it is written deterministically
(sorted keys, no timestamps that move on a no-op run) and atomically: a crash
or a kill leaves either the old file or the new one, never half of each.

A `Render` moves through these states, each written (atomically) before the
next network call:

    (none) --intent written--> intent --fal answered 2xx--> submitted(request_id)
    intent --no answer / 5xx / dropped connection--> unknown   (never re-sent silently)
    submitted --result fetched, video verified--> done
    submitted --fal's definitive failure--> failed
    submitted --404 past fal's retention--> lost

`intent` is written just before the submit is sent; found in a lock that no
storyc is writing, it means the process died with the outcome unknown, exactly
like `unknown`.  A submitted render that already knows its video URL only has
its download left.

A still's entry (a board's generated image) has the same states and rules; it
names its `still` instead of a `scene`, has no `seconds`, and records its
candidates under `images` by number (`"1"`, `"2"`...: the picks a board may
name), each a file under `renders/stills/`.  Any entry made from another
step's output records, under `made_from`, that output's sha256 by the edge it
came through (`still:<key>#<pick>`, `last_frame_of:<key>`), so `status` can
tell when it was made from an output that is no longer the one on record.

One key can have been paid for more than once: two clones without a team store
each submitted it, and a merge brought their entries together.  The entry keeps
one request (its own `request_id`, the one the scene uses) and lists every
other paid request under `also_paid: {request id: {state, video, sent_at,
error}}`.  Those are resumed and their videos fetched like the entry's own
(to a file of their own), never submitted again, and never dropped by a merge.
"""

from __future__ import annotations

import contextlib
import json
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from storyc.diagnostics import StorycError
from storyc.fsutil import OutsideTheBoard, atomic_write_bytes, contained, contained_or_none

LOCK_VERSION = 1
RenderState = Literal["intent", "unknown", "submitted", "done", "failed", "lost"]
RENDER_STATES: tuple[RenderState, ...] = ("intent", "unknown", "submitted", "done", "failed", "lost")
# States whose submit may have reached fal without storyc learning the request id: paying again is a choice.
UNCERTAIN_STATES: tuple[RenderState, ...] = ("intent", "unknown")
HEADER = "# storyc lock file: what each scene rendered to, by content key. Written by `storyc render`; commit it.\n"


class LockError(StorycError):
    """The lock file can't be read, or is held by another storyc."""


@dataclass(frozen=True)
class Video:
    url: str
    bytes: int | None = None  # as announced by fal, when known
    sha256: str | None = None  # of the downloaded file; set once it is verified
    path: str | None = None  # relative to the board

    def to_data(self) -> dict[str, Any]:
        data = {"url": self.url, "bytes": self.bytes, "sha256": self.sha256, "path": self.path}
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class Render:
    scene: str  # the scene that paid for it; "" for a still's entry (see `still`)
    endpoint: str
    state: RenderState
    seconds: int  # 0 for a still
    cost_usd: Decimal
    request_id: str | None = None
    video: Video | None = None
    error: str | None = None  # fal's message for `failed`, the reason for `lost` or `unknown`
    sent_at: datetime | None = None  # UTC, when the submit was (about to be) sent: written with `intent`
    still: str | None = None  # the still that paid for it: then `images` holds its candidates
    images: tuple[Video, ...] = ()  # a still's candidates, in order (candidate n is images[n - 1])
    made_from: dict[str, str] = field(default_factory=dict)  # upstream edge (hashed form) -> its output's sha256
    # Other requests paid for this same key (by request id), each a Render of the same scene, endpoint,
    # seconds and cost with its own state, video, error and sent_at; their own `also_paid` is empty.
    also_paid: dict[str, Render] = field(default_factory=dict)

    @property
    def uncertain(self) -> bool:
        """A submit went out (or was about to) and its answer was never recorded."""
        return self.state in UNCERTAIN_STATES

    @property
    def name(self) -> str:
        """What paid for it, as people say it: `meet`, or `still meet-open`."""
        return f"still {self.still}" if self.still is not None else self.scene

    def requests(self) -> dict[str, Render]:
        """Every request of this key with a request id (fal accepted it), by id: the entry's own, then `also_paid`."""
        own = {self.request_id: replace(self, also_paid={})} if self.request_id is not None else {}
        return {**own, **self.also_paid}

    def with_request(self, render: Render) -> Render:
        """This entry with `render` recorded: in `also_paid` when it is one of those requests, else as the
        entry's own (the other paid requests stay listed: a new state of one request never drops another)."""
        if render.request_id is not None and render.request_id in self.also_paid:
            return replace(self, also_paid={**self.also_paid, render.request_id: replace(render, also_paid={})})
        others = {rid: r for rid, r in self.also_paid.items() if rid != render.request_id}
        return replace(render, also_paid=others)

    def also_paid_note(self) -> str:
        """How `status` and `render` name one of `also_paid`: paid for, so never out of sight."""
        at = f" ({self.video.path})" if self.video is not None and self.video.path else ""
        return f"also paid: request {self.request_id}, {self.state}{at}"

    def to_data(self) -> dict[str, Any]:
        data = self._request_data()
        if self.still is not None:  # a still's entry: no scene, no seconds
            data.update(still=self.still, endpoint=self.endpoint, cost_usd=self.cost_usd)
        else:
            data.update(scene=self.scene, endpoint=self.endpoint, seconds=self.seconds, cost_usd=self.cost_usd)
        if self.request_id is not None:
            data["request_id"] = self.request_id
        if self.also_paid:
            data["also_paid"] = {rid: r._request_data() for rid, r in sorted(self.also_paid.items())}
        return data

    def _request_data(self) -> dict[str, Any]:
        """What one request of the key has of its own (an `also_paid` record: its id is the record's name;
        scene, endpoint, seconds and cost are the entry's: the same key is the same request)."""
        data: dict[str, Any] = {"state": self.state}
        if self.video is not None:
            data["video"] = self.video.to_data()
        if self.images:
            data["images"] = {str(n): image.to_data() for n, image in enumerate(self.images, 1)}
        if self.made_from:
            data["made_from"] = dict(self.made_from)
        if self.error is not None:
            data["error"] = self.error
        if self.sent_at is not None:
            data["sent_at"] = _iso(self.sent_at)
        return data


@dataclass(frozen=True)
class Upload:
    url: str
    uploaded: datetime  # UTC, whole seconds

    def fresh(self, now: datetime, ttl: timedelta) -> bool:
        return now - self.uploaded < ttl

    def to_data(self) -> dict[str, Any]:
        return {"url": self.url, "uploaded": _iso(self.uploaded)}


@dataclass(frozen=True)
class Lock:
    scenes: dict[str, str] = field(default_factory=dict)
    renders: dict[str, Render] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)

    def done(self, key: str) -> Render | None:
        render = self.renders.get(key)
        return render if render is not None and render.state == "done" else None

    def to_data(self) -> dict[str, Any]:
        return {
            "version": LOCK_VERSION,
            "scenes": dict(self.scenes),
            "renders": {k: r.to_data() for k, r in self.renders.items()},
            "uploads": {k: u.to_data() for k, u in self.uploads.items()},
        }


def lock_path(board: Path) -> Path:
    """`film/board.yaml` -> `film/board.lock`."""
    return board.with_suffix(".lock")


def video_path(scene: str, key: str, folder: str = "renders") -> str:
    """Where a scene's render is written, relative to the board: `renders/<scene>-<first 12 hex of key>.mp4`."""
    return f"{folder}/{scene}-{key.removeprefix('sha256:')[:12]}.mp4"


def still_path(still: str, key: str, candidate: int, folder: str = "renders") -> str:
    """Where a still's candidate is written, relative to the board: `renders/stills/<name>-<key12>-<n>.png`."""
    return f"{folder}/stills/{still}-{key.removeprefix('sha256:')[:12]}-{candidate}.png"


def also_paid_video_path(scene: str, key: str, request_id: str) -> str:
    """Where the video of another paid request of a key goes: beside the key's own, named by the request."""
    tag = re.sub(r"[^A-Za-z0-9]", "", request_id)[:12] or "request"
    return video_path(scene, key).removesuffix(".mp4") + f"-{tag}.mp4"


def video_target(board_dir: Path, relative: str) -> Path:
    """The file a video path of the lock names, refused (LockError) unless it stays under `renders/`.

    A lock can come from another branch or a merge: its paths must not reach the board, `.git` or,
    through a symlinked `renders/`, anything outside the board's folder.
    """
    if not _safe_video_path(relative):
        raise LockError(f"refusing video path {relative!r}: render files live under renders/ beside the board")
    try:
        return contained(board_dir, relative)
    except OutsideTheBoard as exc:
        raise LockError(f"refusing video path {relative!r}: {exc.reason}") from None


def _safe_video_path(text: str) -> bool:
    from pathlib import PurePosixPath

    parts = PurePosixPath(text).parts
    return (
        len(parts) >= 2
        and parts[0] == "renders"
        and ".." not in parts
        and "." not in parts
        and not any(c in text for c in ("\\", ":", "\0"))
        and not text.startswith("/")
    )


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- writing ----------------------------------------------------------------------

# Strings written unquoted: they start with a letter, "_" or "/" (so never a number, an anchor or an
# indicator), don't end in ":", and are not words a YAML reader turns into booleans or null.
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./:+@=-]*(?<!:)$")
_NOT_PLAIN = re.compile(r"^(?:true|false|yes|no|on|off|y|n|null|nan|inf)$", re.IGNORECASE)


def dumps(lock: Lock) -> str:
    """The lock as deterministic YAML: sorted keys, two-space indent, one scalar per line."""
    lines = [HEADER.rstrip("\n")]
    _emit(lock.to_data(), 0, lines)
    return "\n".join(lines) + "\n"


def _emit(data: dict[str, Any], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for key in sorted(data, key=lambda k: (k != "version", k)):  # `version` first: it says how to read the rest
        value = data[key]
        if isinstance(value, dict):
            lines.append(f"{pad}{_scalar(key)}:" + (" {}" if not value else ""))
            _emit(value, indent + 2, lines)
        else:
            lines.append(f"{pad}{_scalar(key)}: {_scalar(value)}")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and not _NOT_PLAIN.match(text):
        return text
    # A JSON string is a valid YAML double-quoted scalar; escape what YAML (not JSON) reads as a line break.
    # and what YAML does not allow unescaped (C1 controls, DEL, U+FFFE/F).
    quoted = json.dumps(text, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", quoted)


_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


# --- reading ----------------------------------------------------------------------


def loads(text: str, source: str = "board.lock") -> Lock:
    """Parse a lock file; `LockError` (naming the file and the entry) when it is not a valid lock."""
    if len(text) > MAX_LOCK_BYTES:
        size = f"{len(text):,} characters is too big for a lock file (limit {MAX_LOCK_BYTES:,})"
        raise LockError.at(source, 1, 1, size)
    data = _fast_parse(text)
    if data is None:  # hand-edited or unusual formatting: read it as the YAML it is
        _check_conflicts(text, source)
        data = _yaml_parse(text, source)
    return _from_data(data, source, text)


def read(path: Path) -> Lock:
    """The lock beside a board; an empty lock when there is none yet."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would hang or never end
            raise LockError.at(str(path), None, None, "the lock file is not a regular file")
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return Lock()
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError.at(str(path), None, None, f"can't read the lock file: {exc}") from exc
    return loads(text, str(path))


_LINE = re.compile(r'^( *)([^ "#]\S*?|"(?:[^"\\]|\\.)*"):(?: (.*))?$')


def _fast_parse(text: str) -> dict[str, Any] | None:
    """Read exactly what `dumps` writes, fast (a 1,000-scene lock in milliseconds).

    Returns None at the first line outside that subset; the caller then uses a real YAML parser.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for line in text.split("\n"):  # not splitlines(): that also splits at U+0085 and U+2028
        line = line.removesuffix("\r")  # a checkout with CRLF line ends
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            return None
        indent, raw_key, raw_value = len(match[1]), match[2], match[3]
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        key = _unquote(raw_key)
        if key is None or key in parent:
            return None
        if raw_value is None or raw_value == "{}":
            child: dict[str, Any] = {}
            parent[key] = child
            if raw_value is None:
                stack.append((indent, child))
            continue
        value = _unquote(raw_value)
        if value is None:
            return None
        parent[key] = value
    return root


def _locate(text: str, wanted: list[str]) -> tuple[int, int]:
    """Line and column of the key at dotted path `wanted` (or of its nearest ancestor); (1, 1) if none.

    Only called when reporting a problem, so reading the file a second time costs nothing on a good lock.
    """
    best, depth = (1, 1), 0
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        match = _LINE.match(line.removesuffix("\r"))
        if match is None or line.lstrip().startswith("#"):
            continue
        indent = len(match[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, _unquote(match[2]) or match[2]))
        keys = [k for _, k in stack]
        if len(keys) > depth and keys == wanted[: len(keys)]:
            best, depth = (number, indent + 1), len(keys)
    return best


def _unquote(raw: str) -> str | None:
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    if raw.startswith(("'", "[", "{", "&", "*", "!", "|", ">")) or " #" in raw:
        return None
    return raw


# A lock is storyc's own output: a few levels deep, never anchors or aliases.  The YAML fallback (for
# hand-edited files) is bounded like the board loader, so a crafted lock can't cost minutes or gigabytes.
MAX_LOCK_BYTES = 64 * 1024 * 1024
MAX_LOCK_DEPTH = 8
# What one entry's numbers can be.  Past these a value is a hand edit or a corrupted merge, not a render: read
# as is, `1e999999` dollars would print as Infinity in `gc` and `status`, and sum to it in every total.
MAX_SECONDS = 3600  # an hour: every endpoint renders clips of seconds (Kling: 15 s at most)
MAX_COST_USD = Decimal("100000")  # far past an hour of the dearest endpoint ($0.42 a second in 4K)
MAX_MONEY_DIGITS = 28  # significant digits: a price is a few cents times a few seconds
MAX_VIDEO_BYTES = 2**63 - 1  # the largest size a file system can record (a signed 64-bit offset)
_CONFLICT_MARKER = re.compile(r"^(<{7}|\|{7}|={7}|>{7})(?: |$)", re.MULTILINE)


def _check_conflicts(text: str, source: str) -> None:
    """An unresolved git merge conflict is named at its own line, with the command that repairs it."""
    marker = _CONFLICT_MARKER.search(text)
    if marker is not None:
        line = text.count("\n", 0, marker.start()) + 1
        raise LockError.at(
            source,
            line,
            1,
            f"unresolved git merge conflict ({marker[1]}); "
            "`storyc lock repair BOARD.yaml` merges both sides' renders (or keep both sides' entries by hand)",
        )


def _yaml_parse(text: str, source: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

    def fail(mark: Any, problem: str) -> LockError:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return LockError.at(source, line, col, problem)

    try:
        depth = 0
        for event in YAML(typ="safe", pure=True).parse(text):  # linear: no alias is expanded here
            if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor):
                raise fail(event.start_mark, "anchors and aliases are not allowed in a lock file")
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_LOCK_DEPTH:
                    raise fail(event.start_mark, f"nested deeper than a lock file can be ({MAX_LOCK_DEPTH} levels)")
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise fail(mark, f"not valid YAML ({problem})") from exc


def _from_data(data: Any, source: str, text: str = "") -> Lock:
    if data is None:
        return Lock()
    where = _Where(source, text)
    table = where.mapping(data, "the lock file")
    version = str(table.get("version", ""))
    if version != str(LOCK_VERSION):
        raise where.fail("version", f"unsupported lock version {version or '(missing)'}; this storyc reads version 1")
    scenes = {str(k): where.text(v, f"scenes.{k}") for k, v in where.mapping(table.get("scenes"), "scenes").items()}
    renders = {str(k): _render(where, str(k), v) for k, v in where.mapping(table.get("renders"), "renders").items()}
    uploads = {str(k): _upload(where, str(k), v) for k, v in where.mapping(table.get("uploads"), "uploads").items()}
    return Lock(scenes=scenes, renders=renders, uploads=uploads)


@dataclass(frozen=True)
class _Where:
    source: str
    content: str = ""  # the file's text, to point at the line of a bad entry

    def fail(self, what: str, problem: str) -> LockError:
        line, col = _locate(self.content, what.split("."))
        return LockError.at(self.source, line, col, f"{what}: {problem}")

    def mapping(self, value: Any, what: str) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(what, "expected a mapping")
        return value

    def text(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(what, "expected a non-empty string")
        return value

    def integer(self, value: Any, what: str, maximum: int) -> int:
        try:
            number = int(str(value))
        except ValueError:
            raise self.fail(what, f"expected a whole number, found {_shown(value)}") from None
        if number < 0:
            raise self.fail(what, "must not be negative")
        if number > maximum:
            raise self.fail(what, f"{_shown(value)} is past what a lock can hold here ({maximum:,})")
        return number

    def money(self, value: Any, what: str) -> Decimal:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(what, f"expected an amount in USD, found {_shown(value)}") from None
        if not amount.is_finite():  # `.inf`, `.nan`: every total and JSON output would say Infinity or NaN
            raise self.fail(what, f"expected an amount in USD, found {_shown(value)}")
        if amount < 0:
            raise self.fail(what, "must not be negative")
        if amount > MAX_COST_USD or len(amount.as_tuple().digits) > MAX_MONEY_DIGITS:
            raise self.fail(what, f"{_shown(value)} is past what one render can cost (${MAX_COST_USD:,})")
        return amount


def _shown(value: Any) -> str:
    """A value as the message quotes it: never thousands of digits from a hand-edited lock."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _render(where: _Where, key: str, value: Any) -> Render:
    entry = f"renders.{key}"
    data = where.mapping(value, entry)
    state = _state(where, data.get("state"), f"{entry}.state", RENDER_STATES)
    still = where.text(data["still"], f"{entry}.still") if data.get("still") is not None else None
    render = Render(
        scene="" if still is not None else where.text(data.get("scene"), f"{entry}.scene"),
        endpoint=where.text(data.get("endpoint"), f"{entry}.endpoint"),
        state=state,
        seconds=0 if still is not None else where.integer(data.get("seconds"), f"{entry}.seconds", MAX_SECONDS),
        still=still,
        cost_usd=where.money(data.get("cost_usd"), f"{entry}.cost_usd"),
        request_id=where.text(data["request_id"], f"{entry}.request_id") if data.get("request_id") else None,
    )
    render = _request(where, render, data, entry)
    others = where.mapping(data.get("also_paid"), f"{entry}.also_paid")
    also_paid = {where.text(rid, f"{entry}.also_paid"): v for rid, v in others.items()}
    if render.request_id in also_paid:
        raise where.fail(f"{entry}.also_paid.{render.request_id}", "is the entry's own request_id")
    return replace(render, also_paid={rid: _paid(where, render, rid, v, entry) for rid, v in also_paid.items()})


def _paid(where: _Where, render: Render, request_id: str, value: Any, entry: str) -> Render:
    """One `also_paid` record: another request fal accepted for the same key."""
    what = f"{entry}.also_paid.{request_id}"
    data = where.mapping(value, what)
    state = _state(where, data.get("state"), f"{what}.state", RENDER_STATES)
    return _request(where, replace(render, state=state, request_id=request_id), data, what)


def _request(where: _Where, render: Render, data: dict[Any, Any], what: str) -> Render:
    """`render` with what one request has of its own: its video (a still's: its candidates), what it
    was made from, its error and time sent."""
    video = _file(where, data["video"], f"{what}.video") if data.get("video") is not None else None
    made_from = where.mapping(data.get("made_from"), f"{what}.made_from")
    return replace(
        render,
        video=video,
        error=str(data["error"]) if data.get("error") is not None else None,
        sent_at=_moment(where, data["sent_at"], f"{what}.sent_at") if data.get("sent_at") is not None else None,
        images=_images(where, data, what),
        made_from={str(k): where.text(v, f"{what}.made_from.{k}") for k, v in made_from.items()},
    )


def _images(where: _Where, data: dict[Any, Any], what: str) -> tuple[Video, ...]:
    """A still's candidates, numbered from 1 (the picks a board may name)."""
    images = where.mapping(data.get("images"), f"{what}.images")
    if {str(n) for n in images} != {str(n) for n in range(1, len(images) + 1)}:
        raise where.fail(f"{what}.images", "expected candidates numbered 1, 2, ...")
    ordered = sorted(images, key=lambda n: int(str(n)))
    return tuple(_file(where, images[n], f"{what}.images.{n}") for n in ordered)


def _file(where: _Where, value: Any, what: str) -> Video:
    """A file a render made (a video, a still's candidate): its URL, and once downloaded its size, hash, path."""
    v = where.mapping(value, what)
    return Video(
        url=where.text(v.get("url"), f"{what}.url"),
        bytes=where.integer(v["bytes"], f"{what}.bytes", MAX_VIDEO_BYTES) if v.get("bytes") is not None else None,
        sha256=where.text(v["sha256"], f"{what}.sha256") if v.get("sha256") is not None else None,
        path=_relative_path(where, v["path"], f"{what}.path") if v.get("path") is not None else None,
    )


def _state(where: _Where, state: Any, what: str, allowed: tuple[RenderState, ...]) -> RenderState:
    if state not in allowed:
        raise where.fail(what, f"expected one of {', '.join(allowed)}, found {state!r}")
    return state  # type: ignore[no-any-return]


def _relative_path(where: _Where, value: Any, what: str) -> str:
    """A video path must stay under renders/ beside the board: a lock from another branch must not write elsewhere."""
    text = where.text(value, what)
    if not _safe_video_path(text):
        raise where.fail(what, f"must be a relative path under renders/ beside the board, found {text!r}")
    return text


def _upload(where: _Where, key: str, value: Any) -> Upload:
    entry = f"uploads.{key}"
    data = where.mapping(value, entry)
    moment = _moment(where, data.get("uploaded"), f"{entry}.uploaded")
    return Upload(url=where.text(data.get("url"), f"{entry}.url"), uploaded=moment)


def _moment(where: _Where, raw: Any, what: str) -> datetime:
    try:
        moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise where.fail(what, f"expected a UTC time like 2026-11-25T10:00:00Z, found {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


# --- the store: one writer, many threads --------------------------------------------


class LockStore:
    """The lock of one board, held for the length of a command that writes it.

    Holding it takes an OS file lock under `.storyc/`, so two renders of the same
    board can't interleave their writes; every change is written through at once
    (atomically), so a kill loses nothing that was already recorded.
    """

    def __init__(self, path: Path, lock: Lock) -> None:
        self.path = path
        self._lock = lock
        self._mutex = threading.Lock()
        self._on_disk: Lock | None = lock if path.exists() else None  # what the file says, as read or written

    @property
    def lock(self) -> Lock:
        return self._lock

    def update(self, change: Callable[[Lock], Lock]) -> Lock:
        """Apply `change` and write the result through; a no-change leaves the file untouched."""
        with self._mutex:
            self._lock = change(self._lock)
            # Comparing values, not YAML texts: a no-op run on a 1,000-scene lock skips two dumps.
            if self._lock != self._on_disk:
                atomic_write_bytes(self.path, dumps(self._lock).encode("utf-8"))
                self._on_disk = self._lock
            return self._lock

    def set_render(self, key: str, render: Render) -> None:
        """Record one request's state under `key`; the key's other paid requests stay (`Render.with_request`)."""

        def change(lock: Lock) -> Lock:
            entry = lock.renders.get(key)
            return replace(lock, renders={**lock.renders, key: render if entry is None else entry.with_request(render)})

        self.update(change)

    def set_upload(self, digest: str, upload: Upload) -> None:
        self.update(lambda lock: replace(lock, uploads={**lock.uploads, digest: upload}))

    def set_scenes(self, scenes: dict[str, str]) -> None:
        self.update(lambda lock: replace(lock, scenes=dict(scenes)))


@contextlib.contextmanager
def open_store(board: Path, *, wait: float = 0) -> Iterator[LockStore]:
    """Hold the board's lock file for writing; `LockError` if another storyc holds it.

    The hold is a file under `.storyc/`: `OutsideTheBoard` (exit 1) when `.storyc` leads out of the board's folder.
    """
    from filelock import FileLock, Timeout

    path = lock_path(board)
    held = contained(board.parent, f".storyc/{board.stem}.lock.held")  # before mkdir: a dangling link too
    held.parent.mkdir(parents=True, exist_ok=True)
    guard = FileLock(str(held))
    try:
        guard.acquire(timeout=wait)
    except Timeout:
        raise LockError(
            f"{path} is in use by another storyc command (a render of this board is running?); "
            "wait for it to finish, or stop it, then try again"
        ) from None
    try:
        _remove_stale_temporaries(board.parent, path.name)
        yield LockStore(path, read(path))
    finally:
        guard.release()


def _remove_stale_temporaries(board_dir: Path, lock_name: str) -> None:
    """Temporary files a killed storyc left (`.board.lock.x1y2.tmp`, `renders/.meet-....mp4.x1y2.tmp`).

    Safe while the board's file lock is held: no other storyc writes this lock or its renders now.
    """
    renders = contained_or_none(board_dir, "renders")  # never a clean-up through a link out of the folder
    leftovers = [*board_dir.glob(f".{lock_name}.*.tmp"), *(renders.glob(".*.mp4.*.tmp") if renders else [])]
    for leftover in leftovers:
        with contextlib.suppress(OSError):
            leftover.unlink()
