"""Merging two branches' `board.lock`: the git merge driver and the repair of a conflicted lock.

Two branches that each rendered scenes both add entries to `renders:` (and
`uploads:`, and change `scenes:`), so git's line merge conflicts on the lock
even though nothing really disagrees: every paid render of either branch
belongs in the merged lock.

    git config merge.storyc-lock.driver "storyc lock merge %O %A %B"   # once per clone
    echo 'board.lock merge=storyc-lock' >> .gitattributes             # committed; `storyc init` writes it

With that, `git merge` calls `merge_driver` and the lock merges cleanly.
Where no custom driver runs (GitHub's conflict editor, a clone without the
`git config` line), git writes conflict markers; `repair` (`storyc lock
repair board.yaml`) splits them into the two sides and merges those.

Why `board.lock` and not `*.lock` in `.gitattributes`: `*.lock` would also
send `uv.lock`, `poetry.lock`, `Cargo.lock`, `yarn.lock`... under that folder
to this driver, which refuses them (not a storyc lock), so git would report a
conflict for files its line merge would have merged.  A board with another
name needs its own line (`intro.lock merge=storyc-lock`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

from storyc.fsutil import atomic_write_bytes
from storyc.lock.lockfile import (
    Lock,
    LockError,
    Render,
    RenderState,
    Upload,
    also_paid_video_path,
    dumps,
    loads,
    video_path,
)

DRIVER = "storyc-lock"
GIT_CONFIG_LINE = f'git config merge.{DRIVER}.driver "storyc lock merge %O %A %B"'
ATTRIBUTES_LINE = f"board.lock merge={DRIVER}"
ATTRIBUTES_COMMENT = (
    "storyc: merge the lock file with `storyc lock merge` (its rules: `storyc lock merge --help`).\n"
    f"Once per clone: {GIT_CONFIG_LINE}"
)

# Highest first. Never drop a request id or a paid video: `done` (a video) beats everything, `submitted`
# (a request id fal accepted, resumable at no new cost) beats every state that has none or gave up.
# An uncertain submit must stay visible: `unknown`/`intent` (a submit may have gone out) beat `lost` and
# `failed`, so a merge can't turn "maybe paid, check before re-sending" into "re-render freely".
V = TypeVar("V")

STATE_RANK: dict[RenderState, int] = {"done": 5, "submitted": 4, "unknown": 3, "intent": 2, "lost": 1, "failed": 0}


# --- merging ----------------------------------------------------------------------------


def merge_locks(base: Lock | None, ours: Lock, theirs: Lock) -> Lock:
    """The lock that keeps what both branches paid for.

    renders: the union by key.  For a key on both sides the more advanced state
      wins: done > submitted > unknown > intent > lost > failed (never drop a
      request id or a paid video; an uncertain submit must stay visible).  Same
      state: the entry carrying more information wins (a verified video sha256,
      then a video URL, then a request id); then, deterministically, the entry
      whose canonical JSON sorts last.  So renders never depend on which side is
      "ours", and merge(x, x) == x.  A render removed on one side (`storyc gc`)
      and kept on the other is kept: gc can drop it again, a lost request id
      can't be recovered.  Two different request ids for one key (two clones
      each paid for the same request) are both kept: the entry is the best of
      them by the order above (a video already at the key's own file before
      one at a file of its own), every other under `also_paid`, so `storyc
      render` resumes it and fetches its video (to a file of its own) and never
      submits the key again (see `merge_renders`).
    uploads: the union by digest; the newer `uploaded` wins (then the URL that
      sorts last).
    scenes (the board's current scene -> key, rewritten from the board by the
      next `storyc render` or `storyc gc`): a scene on one side only is kept; a
      scene whose keys differ takes theirs if ours is unchanged from base, ours
      if theirs is unchanged from base, else ours.  This is the one place where
      the sides are not symmetric.
    """
    renders = dict(ours.renders)
    for key, entry in theirs.renders.items():
        mine = renders.get(key)
        renders[key] = entry if mine is None else merge_renders(key, mine, entry)
    uploads = dict(ours.uploads)
    for digest, upload in theirs.uploads.items():
        mine_upload = uploads.get(digest)
        uploads[digest] = upload if mine_upload is None else _newer_upload(mine_upload, upload)
    before = base.scenes if base is not None else {}
    scenes = dict(ours.scenes)
    for scene, key in theirs.scenes.items():
        if scene not in scenes or (scenes[scene] != key and before.get(scene) == scenes[scene]):
            scenes[scene] = key
    return Lock(scenes=_sorted(scenes), renders=_sorted(renders), uploads=_sorted(uploads))


def merge_renders(key: str, *entries: Render) -> Render:
    """One entry for `key` holding every request fal accepted in `entries` (never a paid request id dropped).

    The same request on both sides: its better record (`better_render`).  The entry's own request is the
    best of all by `_entry_order`; each other one is listed in `also_paid`, its video moved to a file of
    its own if it named the key's own file.  A pure function of the set of records (symmetric, associative,
    `merge_renders(k, e) is e` for an entry the ledger wrote), so the order branches merge in is moot.
    An entry without a request id (intent, unknown) competes as the entry's own only.
    """
    records: dict[str, Render] = {}
    unnamed: list[Render] = []
    for entry in entries:
        if entry.request_id is None:  # no request fal accepted, or none recorded (intent, unknown)
            unnamed.append(replace(entry, also_paid={}))
        for request_id, record in entry.requests().items():
            known = records.get(request_id)
            records[request_id] = record if known is None else better_render(known, record)
    own = max([*records.values(), *unnamed], key=lambda r: _entry_order(key, r))
    others = {rid: _own_file(key, r) for rid, r in sorted(records.items()) if rid != own.request_id}
    return replace(own, also_paid=others)


def settle(key: str, entry: Render) -> Render:
    """The entry after one of its requests moved on (a run, a hand edit): its own request stays the scene's
    unless another is further along (done while it failed, a video while it has none); then the merge's
    choice.  Never a reorder on content alone: the video a scene shows does not change between runs."""
    best = merge_renders(key, entry)
    if _entry_order(key, best)[:4] > _entry_order(key, replace(entry, also_paid={}))[:4]:
        return best
    return entry


def better_render(a: Render, b: Render) -> Render:
    """Of two records of one request, the one to keep (symmetric: better_render(a, b) is better_render(b, a))."""
    return max(a, b, key=_render_order)


def _render_order(render: Render) -> tuple[int, bool, bool, bool, str]:
    video = render.video
    return (
        STATE_RANK[render.state],
        video is not None and video.sha256 is not None,
        video is not None,
        render.request_id is not None,
        _canonical(render.to_data()),
    )


def _entry_order(key: str, render: Render) -> tuple[int, bool, bool, bool, bool, str]:
    """`_render_order`, but a video at the key's own file first: the first request of a key to finish is
    downloaded there, and the next merge or run must not make the scene another paid video of it."""
    rank, verified, has_video, named, canonical = _render_order(render)
    at_own_file = render.video is not None and render.video.path == video_path(render.scene, key)
    return rank, verified, has_video, at_own_file, named, canonical


def _own_file(key: str, record: Render) -> Render:
    """Another paid request whose video names the key's own file (each clone downloaded its request there):
    a file of its own.  Whichever request is the entry's, so the order of merges does not matter."""
    video = record.video
    if video is None or video.path != video_path(record.scene, key):
        return record
    assert record.request_id is not None
    return replace(record, video=replace(video, path=also_paid_video_path(record.scene, key, record.request_id)))


def _newer_upload(a: Upload, b: Upload) -> Upload:
    return max(a, b, key=lambda u: (u.uploaded, _canonical(u.to_data())))


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


def _sorted(mapping: dict[str, V]) -> dict[str, V]:
    return {k: mapping[k] for k in sorted(mapping)}


# --- conflict markers -------------------------------------------------------------------

_OPEN = re.compile(r"^(<{7,})(?: .*)?$")
_ANY_MARKER = re.compile(r"^(?:<{7}|\|{7}|={7}|>{7})")


@dataclass(frozen=True)
class _Split:
    ours: list[str]
    theirs: list[str]
    base: list[str] | None
    # for each side, the file's line number (1-based) of each of its lines: errors point into the file
    ours_lines: list[int]
    theirs_lines: list[int]
    hunks: int


def split_conflict(text: str, source: str = "board.lock") -> tuple[str, str, str | None] | None:
    """A lock with git conflict markers -> (ours, theirs, base or None); None when there are none.

    Reads git's `merge` style (<<<<<<< / ======= / >>>>>>>) and `diff3`/`zdiff3` (with a
    ||||||| base section), any number of hunks, any marker length git's `conflict-marker-size`
    gives.  The base is None unless every hunk has its base section.  Lines outside the hunks
    belong to all three.  A marker out of place is a `LockError` at its line.
    """
    split = _split(text, source)
    if split is None:
        return None
    base = "\n".join(split.base) if split.base is not None else None
    return "\n".join(split.ours), "\n".join(split.theirs), base


def _split(text: str, source: str) -> _Split | None:
    lines = text.split("\n")  # not splitlines(): U+2028 and U+0085 are not line ends in a lock
    if not any(_ANY_MARKER.match(line) for line in lines):
        return None
    ours: list[str] = []
    theirs: list[str] = []
    base: list[str] = []
    ours_at: list[int] = []
    theirs_at: list[int] = []
    every_hunk_has_base = True
    hunks = 0
    # where we are: outside a hunk, or in its ours / base / theirs section
    section: Literal["out", "ours", "base", "theirs"] = "out"
    opened_at, size, hunk_has_base = 0, 7, False

    def fail(number: int, problem: str) -> LockError:
        return LockError.at(source, number, 1, f"{problem}; resolve the conflict by hand or check out one side")

    for number, raw in enumerate(lines, 1):
        line = raw.removesuffix("\r")
        kind = _marker(line, size if section != "out" else None)
        if section == "out":
            if kind == "open":
                section, opened_at, hunks = "ours", number, hunks + 1
                size, hunk_has_base = len(line) - len(line.lstrip("<")), False
                continue
            if kind is not None:
                raise fail(number, f"conflict marker {line[:7]!r} without an opening '<<<<<<<' before it")
        elif kind == "open":
            raise fail(number, f"'<<<<<<<' inside the conflict opened at line {opened_at}")
        elif kind == "base":
            if section != "ours":
                raise fail(number, f"'|||||||' out of place in the conflict opened at line {opened_at}")
            section, hunk_has_base = "base", True
            continue
        elif kind == "middle":
            if section == "theirs":
                raise fail(number, f"a second '=======' in the conflict opened at line {opened_at}")
            section = "theirs"
            continue
        elif kind == "close":
            if section != "theirs":
                raise fail(number, f"'>>>>>>>' before the '=======' of the conflict opened at line {opened_at}")
            section = "out"
            every_hunk_has_base &= hunk_has_base
            continue
        elif kind == "stray":
            raise fail(number, f"malformed conflict marker {line!r} in the conflict opened at line {opened_at}")
        if section in ("out", "ours"):
            ours.append(raw)
            ours_at.append(number)
        if section in ("out", "theirs"):
            theirs.append(raw)
            theirs_at.append(number)
        if section in ("out", "base"):
            base.append(raw)
    if section != "out":
        raise fail(opened_at, "conflict opened here is never closed with '>>>>>>>'")
    return _Split(ours, theirs, base if every_hunk_has_base else None, ours_at, theirs_at, hunks)


def _marker(line: str, size: int | None) -> str | None:
    """Which conflict marker `line` is, inside a hunk whose markers are `size` long (None: outside one):
    open, base, middle, close, stray (looks like a marker but isn't one here), or None (a lock line)."""
    if not _ANY_MARKER.match(line):
        return None
    if _OPEN.match(line):
        return "open"
    if size is not None:
        for kind, char, label in (("base", r"\|", "(?: .*)?"), ("middle", "=", ""), ("close", ">", "(?: .*)?")):
            if re.fullmatch(rf"{char}{{{size}}}{label}", line):
                return kind
    return "stray"


# --- reading the sides ------------------------------------------------------------------


def _parse(text: str, source: str, side: str, lines: list[int] | None = None) -> Lock:
    """One side's lock; an empty text is an empty lock.  Errors name the side and, with `lines`,
    the line of the conflicted file the problem is on."""
    if not text.strip():
        return Lock()
    split = _split(text, source)  # a malformed marker raises, located
    if split is not None:
        opened = next(n for n, line in enumerate(text.split("\n"), 1) if _OPEN.match(line.removesuffix("\r")))
        raise LockError.at(
            source,
            opened,
            1,
            f"the {side} version has unresolved conflict markers "
            "(a conflicted lock was committed); run `storyc lock repair` on that branch first",
        )
    try:
        return loads(text, source)
    except LockError as exc:
        first = exc.diagnostics[0]
        line, col = (first.loc.line, first.loc.col) if first.loc else (None, None)
        if line is not None and lines is not None:  # the side's line -> the conflicted file's line
            line = lines[line - 1] if 0 < line <= len(lines) else line
        raise LockError.at(first.path, line, col, f"{first.message} (in the {side} version)") from exc


def _read_text(path: Path, side: str) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError.at(str(path), None, None, f"can't read the {side} version of the lock: {exc}") from exc


# --- the git merge driver ---------------------------------------------------------------


def merge_driver(base_path: Path, ours_path: Path, theirs_path: Path, name: str | None = None) -> None:
    """git's `%O %A %B`: merge the three versions and write the result over `ours_path` (atomically).

    A missing or empty version is an empty lock (a lock added on both branches has no base).
    A version that is not a valid lock raises `LockError` (located; `name`, git's `%P`, names the
    file in messages) and leaves `ours_path` untouched: the CLI exits 1 and git reports a conflict.
    """
    locks = [
        _parse(_read_text(path, side), name or str(path), side)
        for path, side in ((base_path, "base"), (ours_path, "ours"), (theirs_path, "theirs"))
    ]
    merged = merge_locks(locks[0], locks[1], locks[2])
    try:
        atomic_write_bytes(ours_path, dumps(merged).encode("utf-8"))
    except OSError as exc:
        raise LockError.at(str(ours_path), None, None, f"can't write the merged lock: {exc}") from exc


# --- repairing a lock with conflict markers ---------------------------------------------


@dataclass(frozen=True)
class RepairReport:
    path: Path
    repaired: bool
    hunks: int = 0
    # entries (scenes, renders, uploads) of the result, by where they came from
    from_ours: int = 0  # only on our side, or the two sides differed and ours won
    from_theirs: int = 0  # only on their side, or the two sides differed and theirs won
    same: int = 0  # identical on both sides
    sections: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # section -> (ours, theirs, same)
    both_paid: int = 0  # renders both sides paid for under different request ids: kept whole (`also_paid`)

    def summary(self) -> str:
        if not self.repaired:
            return f"{self.path}: no conflict markers; nothing to repair"
        hunks = "1 conflict" if self.hunks == 1 else f"{self.hunks} conflicts"
        entries = "1 entry" if self.from_ours == 1 else f"{self.from_ours} entries"
        both = f", {self.both_paid} paid on both sides (both request ids kept)" if self.both_paid else ""
        return (
            f"{self.path}: repaired {hunks}: {entries} from ours, "
            f"{self.from_theirs} from theirs, {self.same} the same on both sides{both}"
        )


def repair(lock_file: Path) -> RepairReport:
    """Resolve the conflict markers in a lock file by merging its two sides; rewrite it atomically.

    Without markers the file is left byte-identical.  A side that is not a valid lock
    raises `LockError` at the line of the file it is on, and the file is left as it was.
    """
    try:
        text = lock_file.read_text("utf-8")
    except FileNotFoundError:
        raise LockError.at(str(lock_file), None, None, "no lock file to repair") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError.at(str(lock_file), None, None, f"can't read the lock file: {exc}") from exc
    source = str(lock_file)
    split = _split(text, source)
    if split is None:
        return RepairReport(lock_file, repaired=False)
    ours = _parse("\n".join(split.ours), source, "ours", split.ours_lines)
    theirs = _parse("\n".join(split.theirs), source, "theirs", split.theirs_lines)
    base = _parse("\n".join(split.base), source, "base") if split.base is not None else None
    merged = merge_locks(base, ours, theirs)
    try:
        atomic_write_bytes(lock_file, dumps(merged).encode("utf-8"))
    except OSError as exc:
        raise LockError.at(str(lock_file), None, None, f"can't write the repaired lock: {exc}") from exc
    sections = {
        "scenes": _provenance(merged.scenes, ours.scenes, theirs.scenes),
        "renders": _provenance(merged.renders, ours.renders, theirs.renders),
        "uploads": _provenance(merged.uploads, ours.uploads, theirs.uploads),
    }
    return RepairReport(
        lock_file,
        repaired=True,
        hunks=split.hunks,
        from_ours=sum(s[0] for s in sections.values()),
        from_theirs=sum(s[1] for s in sections.values()),
        same=sum(s[2] for s in sections.values()),
        sections=sections,
        both_paid=_both_paid(merged, ours, theirs),
    )


def _provenance(merged: dict[str, V], ours: dict[str, V], theirs: dict[str, V]) -> tuple[int, int, int]:
    """(from ours, from theirs, the same on both sides); an entry made of both sides (`_both_paid`) is in none."""
    from_ours = from_theirs = same = 0
    for key, value in merged.items():
        if ours.get(key) == value and theirs.get(key) == value:
            same += 1
        elif ours.get(key) == value:
            from_ours += 1
        elif key not in ours or theirs.get(key) == value:
            from_theirs += 1
    return from_ours, from_theirs, same


def _both_paid(merged: Lock, ours: Lock, theirs: Lock) -> int:
    """Renders equal to neither side's entry: both sides' requests combined into one entry."""
    return sum(1 for k, r in merged.renders.items() if r not in (ours.renders.get(k), theirs.renders.get(k)))


# --- .gitattributes ---------------------------------------------------------------------


def ensure_gitattributes(directory: Path) -> bool:
    """Add the `board.lock merge=storyc-lock` line to DIRECTORY/.gitattributes; False if it is there already."""
    from storyc.fsutil import ensure_lines

    return ensure_lines(directory / ".gitattributes", [ATTRIBUTES_LINE], ATTRIBUTES_COMMENT)
