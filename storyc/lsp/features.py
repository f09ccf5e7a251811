"""Hover, go to definition, rename, the outline and prices inline: from one `Analysis`, in LSP's types.

Each function takes a character offset into the board (the server converts positions) and gives
lsprotocol values with LSP positions in the encoding agreed with the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from lsprotocol import types

from storyc.compile.compiler import Job, money
from storyc.compile.model import is_url
from storyc.compile.references import tokens
from storyc.compile.validate import RESERVED_NAME, TEMPLATE_FILE_SUFFIXES
from storyc.diagnostics import StorycError
from storyc.lsp.analysis import ASSET_KEYS, Analysis, Declared, SceneEntry
from storyc.lsp.positions import LineIndex

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SCENE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def span_range(lines: LineIndex, start: int, end: int) -> types.Range:
    first, last = lines.point(start), lines.point(end)
    return types.Range(types.Position(first.line, first.unit), types.Position(last.line, last.unit))


def file_uri(path: Path) -> str:
    return path.absolute().as_uri()


# --- hover -------------------------------------------------------------------------------------


def hover(analysis: Analysis, offset: int, encoding: str, markdown: bool) -> types.Hover | None:
    lines = analysis.lines(encoding)
    mention = analysis.mention_at(offset)
    if mention is not None and mention.kind == "reference" and mention.name in analysis.declared:
        text = _reference_hover(analysis, analysis.declared[mention.name], offset, markdown)
        return _hover(text, markdown, span_range(lines, mention.start, mention.end))
    if mention is not None and mention.kind == "scene" and mention.path[-1] == "id":
        scene = next((s for s in analysis.scenes if s.id == mention.name), None)
        if scene is not None:
            return _hover(
                _scene_hover(analysis, scene, markdown), markdown, span_range(lines, mention.start, mention.end)
            )
    declared = analysis.declaration_at(offset)
    if declared is not None:
        return _hover(_reference_hover(analysis, declared, offset, markdown), markdown, None)
    return None


def _hover(text: str, markdown: bool, where: types.Range | None) -> types.Hover:
    kind = types.MarkupKind.Markdown if markdown else types.MarkupKind.PlainText
    return types.Hover(types.MarkupContent(kind, text), where)


def _reference_hover(analysis: Analysis, item: Declared, offset: int, markdown: bool) -> str:
    code = (lambda s: f"`{s}`") if markdown else (lambda s: s)
    said = f": {item.description}" if item.description else ""
    parts = [f"{'**' if markdown else ''}@{item.name}{'**' if markdown else ''}, a {item.kind}{said}"]
    scene = analysis.scene_at(offset)
    if scene is not None:
        job = analysis.job(scene.id, analysis.default_board)
        tag = {name: tag for tag, name in job.references.items()}.get(item.name) if job is not None else None
        if tag is not None:
            parts.append(f"In scene {code(scene.id)} it is sent as {code(tag)}.")
        elif job is None:
            parts.append(f"Scene {code(scene.id)} does not compile yet: no position for it.")
    image = item.image or item.video
    if image is not None:
        where = image if is_url(image) else file_uri(analysis.path.parent / image)
        if markdown and item.image is not None:
            parts.append(f"![{item.name}]({where})")
        else:
            parts.append(f"{_what_image(item)}: {where}")
    return "\n\n".join(parts)


def _what_image(item: Declared) -> str:
    if item.image is None:
        return "video"
    return "frontal image" if item.kind == "character" else "image"


def _scene_hover(analysis: Analysis, scene: SceneEntry, markdown: bool) -> str:
    rows = list(_scene_rows(analysis, scene))
    seconds = next((job.seconds for _, job, _ in rows), None)
    head = f"scene `{scene.id}`" if markdown else f"scene {scene.id}"
    head += f": {seconds} s" if seconds is not None else ": does not compile yet"
    if not rows:
        return head
    if markdown:
        table = ["| profile | price | lock |", "| --- | --- | --- |"]
        table += [f"| {profile} | {job.price_text} | {state} |" for profile, job, state in rows]
        return head + "\n\n" + "\n".join(table)
    return head + "\n" + "\n".join(f"{profile}: {job.price_text}; {state}" for profile, job, state in rows)


def _scene_rows(analysis: Analysis, scene: SceneEntry) -> Iterator[tuple[str, Job, str]]:
    """(profile, its job for the scene, what a render would do with it: cached, resume, render...)."""
    from storyc.commands._board import read_lock
    from storyc.render.plan import plan_with_lock

    try:
        lock = read_lock(analysis.path)
    except StorycError as exc:
        lock, unreadable = None, str(exc)
    for profile, board in analysis.boards.items():
        job = analysis.job(scene.id, board)
        if job is None:
            continue
        name = profile or "price"
        if lock is None:
            yield name, job, f"lock unreadable: {unreadable}"
            continue
        item = plan_with_lock(board.storyboard, [job], lock).items[0]
        yield name, job, f"{item.action} ({item.note})"


# --- go to definition --------------------------------------------------------------------------


def definition(analysis: Analysis, offset: int, encoding: str) -> types.Location | None:
    lines = analysis.lines(encoding)
    uri = file_uri(analysis.path)
    mention = analysis.mention_at(offset)
    if mention is not None and mention.kind == "reference" and mention.name in analysis.declared:
        span = analysis.key_span(analysis.declared[mention.name].path)
        return None if span is None else types.Location(uri, span_range(lines, *span))
    if mention is not None and mention.kind == "scene":
        scene = next((s for s in analysis.scenes if s.id == mention.name and s.id_span is not None), None)
        if scene is not None and scene.id_span is not None:
            return types.Location(uri, span_range(lines, scene.id_span.start, scene.id_span.end))
    if mention is not None and mention.kind == "still":
        span = analysis.key_span(("stills", mention.name))
        return None if span is None else types.Location(uri, span_range(lines, *span))
    asset = _asset_at(analysis, offset)
    if asset is not None and asset.is_file():
        return types.Location(file_uri(asset), types.Range(types.Position(0, 0), types.Position(0, 0)))
    return None


def _asset_at(analysis: Analysis, offset: int) -> Path | None:
    """The local file an asset (or template file) value under the cursor names."""
    scalar = analysis.scalar_at(offset)
    if scalar is None or not isinstance(scalar.value, str) or is_url(scalar.value):
        return None
    path = scalar.path
    is_asset = (
        path[-1] in ASSET_KEYS
        or (len(path) >= 2 and path[-2] == "references" and path[0] == "characters")
        or (len(path) == 2 and path[0] == "styles")
        or (len(path) == 2 and path[0] == "templates" and scalar.value.endswith(TEMPLATE_FILE_SUFFIXES))
    )
    return analysis.path.parent / scalar.value if is_asset else None


# --- rename ------------------------------------------------------------------------------------


class RenameRefused(StorycError):
    """The new name can't be used (its message says why, for the editor to show)."""


def rename(
    analysis: Analysis, offset: int, new_name: str, encoding: str, read: Callable[[Path], str]
) -> types.WorkspaceEdit | None:
    """Every place the name under the cursor is written (`@name`s, `with:`, the declaration; a scene's
    id), each replaced in place: comments, quotes and layout stay as they are.

    `read(path)` gives a template file's text (the editor's buffer when it is open), for its `@name`s.
    """
    target = _rename_target(analysis, offset)
    if target is None:
        return None
    old, kind = target
    if new_name == old:
        return None
    _check_new_name(analysis, kind, new_name)
    lines = analysis.lines(encoding)
    spans = [(m.start, m.end) for m in analysis.mentions if m.name == old and m.kind == kind]
    if kind == "reference":
        declared = analysis.key_span(analysis.declared[old].path)
        spans += [declared] if declared is not None else []
    edits = {file_uri(analysis.path): [types.TextEdit(span_range(lines, *s), new_name) for s in sorted(set(spans))]}
    if kind == "reference":
        for template in _template_files(analysis):
            text = read(template)
            here = LineIndex(text, encoding)
            found = [
                types.TextEdit(span_range(here, t.start + 1, t.end), new_name) for t in tokens(text) if t.name == old
            ]
            if found:
                edits[file_uri(template)] = found
    return types.WorkspaceEdit(changes=edits)


def _rename_target(analysis: Analysis, offset: int) -> tuple[str, str] | None:
    mention = analysis.mention_at(offset)
    if mention is not None and mention.kind == "reference" and mention.name in analysis.declared:
        return mention.name, "reference"
    if mention is not None and mention.kind == "scene" and any(s.id == mention.name for s in analysis.scenes):
        return mention.name, "scene"
    declared = analysis.declaration_at(offset)
    return (declared.name, "reference") if declared is not None else None


def _check_new_name(analysis: Analysis, kind: str, new_name: str) -> None:
    if kind == "reference":
        if not _NAME.fullmatch(new_name) or RESERVED_NAME.fullmatch(new_name):
            raise RenameRefused(
                f"'{new_name}' is not a name: a letter, then letters, digits or '_' (and not ElementN or ImageN)"
            )
        if new_name in analysis.declared:
            raise RenameRefused(f"'{new_name}' is already a {analysis.declared[new_name].kind} of this board")
    else:
        if not _SCENE_ID.fullmatch(new_name):
            raise RenameRefused(f"'{new_name}' is not a scene id: letters, digits, '-' and '_' (at most 64)")
        if any(s.id == new_name for s in analysis.scenes):
            raise RenameRefused(f"there is already a scene '{new_name}'")


def _template_files(analysis: Analysis) -> list[Path]:
    board = analysis.default_board or next(iter(analysis.boards.values()), None)
    return [Path(f) for f in board.template_files] if board is not None else []


# --- the outline and prices inline ------------------------------------------------------------


def symbols(analysis: Analysis, encoding: str) -> list[types.DocumentSymbol]:
    lines = analysis.lines(encoding)
    found: list[types.DocumentSymbol] = []
    for item in analysis.declared.values():
        span = analysis.key_span(item.path)
        if span is None:
            continue
        where = span_range(lines, *span)
        kind = types.SymbolKind.Class if item.kind == "character" else types.SymbolKind.Constant
        found.append(types.DocumentSymbol(item.name, kind, where, where, detail=item.kind))
    for name in analysis.stills:
        span = analysis.key_span(("stills", name))
        if span is not None:
            where = span_range(lines, *span)
            found.append(types.DocumentSymbol(name, types.SymbolKind.File, where, where, detail="still"))
    board = analysis.default_board
    for scene in analysis.scenes:
        if scene.id_span is None:
            continue
        job = analysis.job(scene.id, board)
        detail = f"scene, {job.seconds} s" if job is not None else "scene"
        end = scene.start + len(analysis.text[scene.start : scene.end].rstrip())
        whole = span_range(lines, scene.start, max(end, scene.id_span.end))
        found.append(
            types.DocumentSymbol(
                scene.id,
                types.SymbolKind.Event,
                whole,
                span_range(lines, scene.id_span.start, scene.id_span.end),
                detail,
            )
        )
    return found


def price_hints(analysis: Analysis, first_line: int, last_line: int, encoding: str) -> list[types.InlayHint]:
    """After each scene's id (on lines first_line..last_line): its price in each profile."""
    lines = analysis.lines(encoding)
    boards = analysis.boards
    hints: list[types.InlayHint] = []
    for scene in analysis.scenes:
        if scene.id_span is None:
            continue
        at = lines.point(scene.id_span.end)
        if not first_line <= at.line <= last_line:
            continue
        priced = [(profile, analysis.job(scene.id, board)) for profile, board in boards.items()]
        label = _price_label([(p, j) for p, j in priced if j is not None])
        if label:
            hints.append(types.InlayHint(types.Position(at.line, at.unit), label, padding_left=True))
    return hints


def _price_label(priced: list[tuple[str | None, Job]]) -> str:
    def one(profile: str | None, job: Job) -> str:
        estimate = "" if job.price_certain else " (estimate)"
        return f"{profile + ' ' if profile else ''}{money(job.cost_usd)}{estimate}"

    return " · ".join(one(p, j) for p, j in priced)
