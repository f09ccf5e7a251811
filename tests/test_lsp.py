"""`storyc lsp` driven by a real LSP client over stdio (pytest-lsp starts it as a subprocess).

Every feature is checked on the elephant example (copied, so edits and locks are the test's own) and
on a generated 1,000-scene board: diagnostics agree with `storyc check` and follow the unsaved
buffer, positions are 0-based UTF-16, and no request, however odd, stops the server.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = Path(__file__).resolve().parent.parent
ELEPHANT = ROOT / "examples" / "elephant"
sys.path.insert(0, str(ROOT / "benchmarks"))

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "storyc", "lsp"])
DIAGNOSTICS = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS


@pytest_lsp.fixture(config=SERVER)  # type: ignore[untyped-decorator]  # pytest-lsp types none of it
async def client(lsp_client: LanguageClient, tmp_path: Path) -> AsyncIterator[None]:
    capabilities = client_capabilities("visual-studio-code")
    await lsp_client.initialize_session(types.InitializeParams(capabilities=capabilities, root_uri=tmp_path.as_uri()))
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def film(tmp_path: Path) -> Path:
    """A copy of the elephant example, in a git work tree of its own."""
    shutil.copytree(ELEPHANT, tmp_path / "film")
    (tmp_path / ".git").mkdir()
    return tmp_path / "film" / "board.yaml"


async def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> Sequence[types.Diagnostic]:
    """Open `path` in the client (with `text` typed over it, unsaved) and wait for its diagnostics."""
    text = path.read_text("utf-8") if text is None else text
    item = types.TextDocumentItem(path.as_uri(), "yaml", 1, text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(item))
    return await diagnostics_of(client, path)


async def change(client: LanguageClient, path: Path, text: str, version: int) -> Sequence[types.Diagnostic]:
    document = types.VersionedTextDocumentIdentifier(version=version, uri=path.as_uri())
    whole = types.TextDocumentContentChangeWholeDocument(text=text)
    client.text_document_did_change(types.DidChangeTextDocumentParams(document, [whole]))
    return await diagnostics_of(client, path)


async def diagnostics_of(client: LanguageClient, path: Path) -> Sequence[types.Diagnostic]:
    while True:
        await asyncio.wait_for(client.wait_for_notification(DIAGNOSTICS), 60)
        if path.as_uri() in client.diagnostics:
            return list(client.diagnostics.pop(path.as_uri()))


def check_json(board: Path) -> list[dict[str, Any]]:
    """`storyc check --json` of a saved board: what the server must say of the same text."""
    done = subprocess.run(
        [sys.executable, "-m", "storyc", "check", "--json", board.name],
        cwd=board.parent,
        capture_output=True,
        text=True,
    )
    assert done.stdout, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)["files"][0]["diagnostics"]
    return found


def as_check(diagnostics: Sequence[types.Diagnostic]) -> list[tuple[int, int, str, str]]:
    """The diagnostics as `storyc check` writes them: 1-based line and column (ASCII lines: units are characters)."""
    severity = {types.DiagnosticSeverity.Error: "error", types.DiagnosticSeverity.Warning: "warning"}
    found = [
        (
            d.range.start.line + 1,
            d.range.start.character + 1,
            severity[d.severity or types.DiagnosticSeverity.Error],
            d.message,
        )
        for d in diagnostics
    ]
    return sorted(found)


def position_of(text: str, needle: str, occurrence: int = 0, shift: int = 0) -> types.Position:
    """The LSP position (UTF-16) of the `occurrence`-th `needle` in `text`, plus `shift` characters."""
    at = -1
    for _ in range(occurrence + 1):
        at = text.index(needle, at + 1)
    at += shift
    line = text.count("\n", 0, at)
    before = text[text.rfind("\n", 0, at) + 1 : at]
    return types.Position(line, len(before.encode("utf-16-le")) // 2)


def doc_id(path: Path) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(path.as_uri())


def apply_edits(text: str, edits: Sequence[types.TextEdit]) -> str:
    """The text with LSP edits applied (UTF-16 positions), last first."""
    lines = text.split("\n")

    def offset(p: types.Position) -> int:
        line = lines[p.line]
        units, chars = 0, 0
        while units < p.character:
            units += len(line[chars].encode("utf-16-le")) // 2
            chars += 1
        return sum(len(x) + 1 for x in lines[: p.line]) + chars

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


# --- diagnostics ---------------------------------------------------------------------------------

# Three more styles sent with the video scene: 6 references with a video element, an error on the
# standard endpoint (the draft profile) and a warning on 4K (final); and a frame that is not there.
EDITED = {
    "  noir:\n": "  extra: refs/dawn-palette.jpg\n  more: refs/dawn-palette.jpg\n  noir:\n",
    '    aspect_ratio: "9:16"       # per-scene override of target.*\n': "    with: [dawn, extra, more]\n",
    "end_frame: refs/close.png": "end_frame: refs/closing.png",  # missing: an error in every profile
}


def edited(text: str) -> str:
    for old, new in EDITED.items():
        assert old in text
        text = text.replace(old, new)
    return text


async def test_diagnostics_are_storyc_checks_of_the_unsaved_buffer(client: LanguageClient, film: Path) -> None:
    saved = film.read_text("utf-8")
    assert await open_doc(client, film) == []
    typed = edited(saved)
    (film.parent / "typed.yaml").write_text(typed, "utf-8")
    expected = check_json(film.parent / "typed.yaml")
    assert {d["severity"] for d in expected} == {"error", "warning"}  # per profile: each problem once
    assert any("profile 'draft'" in d["message"] for d in expected)
    got = await change(client, film, typed, 2)
    assert as_check(got) == sorted((d["line"], d["col"], d["severity"], d["message"]) for d in expected)
    assert [d.message for d in got].count("file not found: refs/closing.png") == 1  # once, not once a profile
    assert film.read_text("utf-8") == saved  # nothing was saved: the diagnostics are of the buffer
    assert await change(client, film, saved, 3) == []


async def test_diagnostic_columns_are_utf16_on_non_ascii_lines(client: LanguageClient, film: Path) -> None:
    line = '    subjects: "🐘 éléphant @ellie meets @bal"\n'
    text = film.read_text("utf-8").replace(
        '    subjects: "@ellie enters from the left; @ball rolls in from the right."\n', line
    )
    found = [d for d in await open_doc(client, film, text) if "'@bal'" in d.message or "@bal" in d.message]
    assert len(found) == 1, found
    expected = position_of(text, '@bal"')
    assert (found[0].range.start.line, found[0].range.start.character) == (expected.line, expected.character)
    assert expected.character != text.split("\n")[expected.line].index("@bal")  # the emoji is 2 units, 1 character


async def test_a_board_that_does_not_parse_gets_diagnostics_and_the_server_goes_on(
    client: LanguageClient, film: Path
) -> None:
    broken = film.read_text("utf-8").replace("scenes:\n", "scenes: [\n", 1)
    (film.parent / "broken.yaml").write_text(broken, "utf-8")
    expected = check_json(film.parent / "broken.yaml")
    got = await open_doc(client, film, broken)
    assert got and as_check(got) == sorted((d["line"], d["col"], d["severity"], d["message"]) for d in expected)
    # requests on it, on a document never opened and at positions past the end: empty answers
    for uri, where in (
        (film.as_uri(), position_of(broken, "@ellie")),
        ("file:///nowhere/board.yaml", types.Position(3, 3)),
    ):
        place = types.TextDocumentIdentifier(uri)
        assert await client.text_document_hover_async(types.HoverParams(place, where)) is None
        assert await client.text_document_definition_async(types.DefinitionParams(place, where)) is None
    far = types.Position(10_000, 10_000)
    assert await client.text_document_hover_async(types.HoverParams(doc_id(film), far)) is None
    await client.text_document_completion_async(types.CompletionParams(doc_id(film), far))
    renamed = await client.text_document_rename_async(types.RenameParams(doc_id(film), far, "x"))
    assert renamed is None
    # ... and it still answers: fixed, the board is clean again
    assert await change(client, film, film.read_text("utf-8"), 2) == []
    hover = await client.text_document_hover_async(types.HoverParams(doc_id(film), position_of(broken, "@ellie", 1, 1)))
    assert hover is not None


async def test_changes_in_a_burst_are_checked_once_as_last_typed(client: LanguageClient, film: Path) -> None:
    saved = film.read_text("utf-8")
    await open_doc(client, film)
    checks_before = len(checks_logged(client))
    for version, name in enumerate(("@b", "@ba", "@bal", "@balx", "@balxy"), 2):
        document = types.VersionedTextDocumentIdentifier(version=version, uri=film.as_uri())
        typed = types.TextDocumentContentChangeWholeDocument(text=saved.replace("@ball enters", f"{name} enters"))
        client.text_document_did_change(types.DidChangeTextDocumentParams(document, [typed]))
        await asyncio.sleep(0.01)  # typing: keys 10 ms apart, each seen by the server before the next
    messages = [d.message for d in await diagnostics_of(client, film)]
    assert any("'@balxy'" in m for m in messages) and not any("'@bal'" in m for m in messages), messages
    with pytest.raises(TimeoutError):  # the earlier versions were never published
        await asyncio.wait_for(client.wait_for_notification(DIAGNOSTICS), 2)
    assert len(checks_logged(client)) == checks_before + 1  # ... nor even compiled


def checks_logged(client: LanguageClient) -> list[str]:
    return [m.message for m in client.log_messages if m.message.startswith("storyc lsp: checked ")]


async def test_closing_a_board_clears_its_problems(client: LanguageClient, film: Path) -> None:
    typo = film.read_text("utf-8").replace("@ball enters", "@bal enters")
    assert len(await open_doc(client, film, typo)) == 1
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc_id(film)))
    assert await diagnostics_of(client, film) == []  # the unsaved typo went with its buffer


async def test_yaml_that_is_not_a_board_is_left_alone(client: LanguageClient, film: Path) -> None:
    workflow = film.parent / "ci.yml"
    text = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(workflow.as_uri(), "yaml", 1, text))
    )
    other = film.parent / "teaser.yaml"  # any name: a top-level `scenes:` makes it a board
    other.write_text(film.read_text("utf-8").replace("@ball enters", "@bal enters"), "utf-8")
    assert [d.message for d in await open_doc(client, other)] == ["unknown reference '@bal' (did you mean 'ball'?)"]
    assert workflow.as_uri() not in client.diagnostics  # opened first, checked first: had it been, it would be here
    where = types.CompletionParams(doc_id(workflow), types.Position(1, 0))
    assert await client.text_document_completion_async(where) is None


# --- completion ----------------------------------------------------------------------------------


async def complete(client: LanguageClient, film: Path, text: str, marker: str) -> list[types.CompletionItem]:
    """Open `text` with `marker` removed and complete where it was."""
    where = position_of(text, marker)
    await open_doc(client, film, text.replace(marker, "", 1))
    found = await client.text_document_completion_async(types.CompletionParams(doc_id(film), where))
    assert isinstance(found, types.CompletionList)
    return list(found.items)


def labels(items: Sequence[types.CompletionItem]) -> set[str]:
    return {i.label for i in items}


async def test_completion_of_names_with_their_kind_and_description(client: LanguageClient, film: Path) -> None:
    text = film.read_text("utf-8").replace("details: dust catches the light", "details: dust catches @el<|>")
    items = await complete(client, film, text, "<|>")
    assert labels(items) == {"ellie", "ball", "dawn", "noir"}
    ellie = next(i for i in items if i.label == "ellie")
    noir = next(i for i in items if i.label == "noir")
    assert (ellie.kind, ellie.detail, ellie.documentation) == (
        types.CompletionItemKind.Class,
        "character",
        "a young grey elephant wearing a red scarf",
    )
    assert (noir.kind, noir.detail, noir.documentation) == (
        types.CompletionItemKind.Color,
        "style",
        "high-contrast monochrome",
    )
    assert ellie.text_edit is not None and ellie.text_edit.new_text == "ellie"  # replaces the "el" typed
    assert isinstance(ellie.text_edit, types.TextEdit)
    assert ellie.text_edit.range.end.character - ellie.text_edit.range.start.character == 2


@pytest.mark.parametrize(
    ("where", "typed", "expected", "not_expected"),
    [
        ("vars:", "ti<|>\n", {"title", "profiles", "default_profile", "characters", "scenes"}, {"frontal"}),
        ("    video: refs/ball.mp4", "\n    <|>", {"frontal", "references", "video", "voice", "description"}, {"id"}),
        ("    duration: 8\n", "    a<|>\n", {"aspect_ratio", "shots", "with", "start_frame", "template"}, {"version"}),
        ("        duration: 3\n", "        <|>\n", {"prompt", "duration"}, {"shots", "id"}),
        (
            "    endpoint: fal-ai/kling-video/o3/standard/reference-to-video\n",
            "    <|>\n",
            {"endpoint", "duration"},
            {"id"},
        ),
    ],
)
async def test_completion_of_keys_at_every_level(
    client: LanguageClient, film: Path, where: str, typed: str, expected: set[str], not_expected: set[str]
) -> None:
    text = film.read_text("utf-8")
    at = text.index(where) + (len(where) if not where.endswith(":") else 0)
    if where == "    video: refs/ball.mp4":
        at = text.index("\n", at)
    items = await complete(client, film, text[:at] + typed + text[at:], "<|>")
    assert expected <= labels(items), labels(items)
    assert not not_expected & labels(items)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("default_profile: draft", "default_profile: <|>", {"draft", "final"}),
        ("frontal: refs/ellie-front.png", "frontal: refs/<|>", {"refs/ellie-front.png", "refs/dawn-palette.jpg"}),
        ("video: refs/ball.mp4", "video: <|>", {"refs/ball.mp4"}),
        ("end_frame: refs/close.png", "end_frame:\n      last_frame_of: <|>", {"meet", "play"}),
        ('aspect_ratio: "9:16"', "aspect_ratio: <|>", {'"16:9"', '"9:16"', '"1:1"'}),
    ],
)
async def test_completion_of_values_that_name_something(
    client: LanguageClient, film: Path, old: str, new: str, expected: set[str]
) -> None:
    text = film.read_text("utf-8").replace(old, new)
    found = labels(await complete(client, film, text, "<|>"))
    assert found == expected if "refs/" not in new else expected <= found, found
    if "frontal" in new:
        assert "refs/ball.mp4" not in found  # an image slot offers images
    if "video" in new:
        assert found == {"refs/ball.mp4"}


# --- hover and go to definition ------------------------------------------------------------------


def compiled(board: Path, profile: str) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "storyc", "compile", "--json", "--profile", profile, board.name],
        cwd=board.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return {job["scene"]: job for job in json.loads(done.stdout)["jobs"]}


async def hover_text(client: LanguageClient, film: Path, where: types.Position) -> str:
    found = await client.text_document_hover_async(types.HoverParams(doc_id(film), where))
    assert found is not None and isinstance(found.contents, types.MarkupContent)
    assert found.contents.kind == types.MarkupKind.Markdown
    return found.contents.value


async def test_hover_on_a_name_gives_its_position_in_that_scene_and_its_image(
    client: LanguageClient, film: Path
) -> None:
    text = film.read_text("utf-8")
    await open_doc(client, film)
    in_meet = await hover_text(client, film, position_of(text, "@ellie", 0, 2))
    assert "@Element1" in in_meet and "a young grey elephant wearing a red scarf" in in_meet
    assert f"![ellie]({(film.parent / 'refs' / 'ellie-front.png').as_uri()})" in in_meet
    assert "@Element2" in await hover_text(client, film, position_of(text, "@ball", 0, 1))  # meet: ellie, ball
    assert "@Image1" in await hover_text(client, film, position_of(text, "@noir", 0, 3))  # play: noir is its only style
    assert "@Element2" in await hover_text(client, film, position_of(text, "@ball", 1, 1))  # play: ellie, then ball


async def test_hover_on_a_scene_gives_its_seconds_price_per_profile_and_lock_state(
    client: LanguageClient, film: Path
) -> None:
    from storyc.lock.lockfile import Lock, Render, dumps

    draft, final = compiled(film, "draft")["meet"], compiled(film, "final")["meet"]
    done = Render("meet", draft["endpoint"], "done", 8, Decimal(str(draft["cost_usd"])), request_id="r-1")
    (film.parent / "board.lock").write_text(dumps(Lock(renders={draft["key"]: done})), "utf-8")
    text = film.read_text("utf-8")
    await open_doc(client, film)
    shown = await hover_text(client, film, position_of(text, "id: meet", 0, 5))
    assert "scene `meet`: 8 s" in shown
    rows = {line.split("|")[1].strip(): line for line in shown.splitlines() if line.startswith("| ")}
    assert f"${draft['cost_usd']:.2f}" in rows["draft"] and "| cached" in rows["draft"]
    assert f"${final['cost_usd']:.2f}" in rows["final"] and "| render" in rows["final"]


async def test_definition_of_a_name_and_of_an_asset(client: LanguageClient, film: Path) -> None:
    text = film.read_text("utf-8")
    await open_doc(client, film)
    found = await client.text_document_definition_async(
        types.DefinitionParams(doc_id(film), position_of(text, "@noir", 0, 2))
    )
    assert isinstance(found, types.Location) and found.uri == film.as_uri()
    assert (found.range.start, found.range.end) == (
        position_of(text, "  noir:", 0, 2),
        position_of(text, "  noir:", 0, 6),
    )
    asset = await client.text_document_definition_async(
        types.DefinitionParams(doc_id(film), position_of(text, "refs/ellie-side.png", 0, 6))
    )
    assert isinstance(asset, types.Location) and asset.uri == (film.parent / "refs" / "ellie-side.png").as_uri()


# --- rename --------------------------------------------------------------------------------------


async def rename(
    client: LanguageClient, film: Path, where: types.Position, new: str
) -> dict[str, list[types.TextEdit]]:
    edit = await client.text_document_rename_async(types.RenameParams(doc_id(film), where, new))
    assert edit is not None and edit.changes is not None
    return {uri: list(edits) for uri, edits in edit.changes.items()}


async def test_rename_a_character_everywhere_keeping_comments_and_layout(client: LanguageClient, film: Path) -> None:
    text = film.read_text("utf-8").replace("dust catches the light", "dust catches 🐘 @ellie's light")
    await open_doc(client, film, text)
    edits = await rename(client, film, position_of(text, "@ellie", 2, 3), "nellie")
    assert list(edits) == [film.as_uri()]
    renamed = apply_edits(text, edits[film.as_uri()])
    assert renamed == text.replace("@ellie", "@nellie").replace("\n  ellie:", "\n  nellie:")
    assert await change(client, film, renamed, 2) == []  # the renamed board is as clean as before


async def test_rename_a_style_from_its_declaration_with_its_with_entries(client: LanguageClient, film: Path) -> None:
    text = film.read_text("utf-8").replace("    duration: 8\n", "    duration: 8\n    with: [noir]\n")
    await open_doc(client, film, text)
    edits = await rename(client, film, position_of(text, "\n  noir:", 0, 4), "film_noir")
    expected = text.replace("@noir", "@film_noir").replace("with: [noir]", "with: [film_noir]")
    assert apply_edits(text, edits[film.as_uri()]) == expected.replace("\n  noir:", "\n  film_noir:")


async def test_rename_a_scene_and_a_refused_new_name(client: LanguageClient, film: Path) -> None:
    text = film.read_text("utf-8")
    await open_doc(client, film)
    edits = await rename(client, film, position_of(text, "id: meet", 0, 4), "opening")
    assert apply_edits(text, edits[film.as_uri()]) == text.replace("- id: meet ", "- id: opening ")
    refused = await client.text_document_rename_async(
        types.RenameParams(doc_id(film), position_of(text, "@dawn"), "noir")
    )
    assert refused is None
    assert any("already a style" in m.message for m in client.messages)


# --- outline and prices inline -------------------------------------------------------------------


async def test_document_symbols(client: LanguageClient, film: Path) -> None:
    text = film.read_text("utf-8")
    await open_doc(client, film)
    found = await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc_id(film)))
    assert found is not None
    kinds = {s.name: s.kind for s in found if isinstance(s, types.DocumentSymbol)}
    assert kinds == {
        "ellie": types.SymbolKind.Class,
        "ball": types.SymbolKind.Class,
        "dawn": types.SymbolKind.Constant,
        "noir": types.SymbolKind.Constant,
        "meet": types.SymbolKind.Event,
        "play": types.SymbolKind.Event,
    }
    play = next(s for s in found if s.name == "play")
    assert isinstance(play, types.DocumentSymbol)
    assert play.selection_range.start == position_of(text, "id: play", 0, 4)
    assert play.range.end.line == text.rstrip().count("\n")  # the last scene runs to the end


async def test_inlay_hints_give_each_scenes_price_in_each_profile(client: LanguageClient, film: Path) -> None:
    text = film.read_text("utf-8")
    await open_doc(client, film)
    whole = types.Range(types.Position(0, 0), types.Position(text.count("\n"), 0))
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(doc_id(film), whole))
    assert hints is not None and len(hints) == 2
    draft, final = compiled(film, "draft"), compiled(film, "final")
    for hint, scene in zip(hints, ("meet", "play"), strict=True):
        assert hint.position == position_of(text, f"id: {scene}", 0, 4 + len(scene))
        assert hint.label == (
            f"draft ${draft[scene]['cost_usd']:.2f} (estimate) · final ${final[scene]['cost_usd']:.2f} (estimate)"
        )
    first_only = types.Range(types.Position(0, 0), position_of(text, "id: meet"))
    assert len(await client.text_document_inlay_hint_async(types.InlayHintParams(doc_id(film), first_only)) or []) == 1


# --- a big board ---------------------------------------------------------------------------------


@pytest.fixture
def big_board(tmp_path: Path) -> Path:
    """benchmarks/bench_compile.py's 1,000-scene board (50 characters, 20 styles, 3 shots a scene)."""
    from bench_compile import board_text, make_assets

    (tmp_path / ".git").mkdir()
    make_assets(tmp_path)
    board = tmp_path / "board.yaml"
    board.write_text(board_text(1000), "utf-8")
    return board


async def test_every_feature_on_a_1000_scene_board(client: LanguageClient, big_board: Path) -> None:
    text = big_board.read_text("utf-8")
    assert await open_doc(client, big_board) == []
    last = text.rindex("- id: scene-999")
    shown = await hover_text(client, big_board, position_of(text, "scene-999", 0, 3))
    assert "scene `scene-999`: 9 s" in shown and "| price | $3.78 | render (new scene) |" in shown, shown
    names = await client.text_document_completion_async(
        types.CompletionParams(doc_id(big_board), position_of(text, "@c", text.count("@c", 0, last) + 1, 1))
    )
    assert isinstance(names, types.CompletionList) and len(names.items) == 70
    edits = await rename(client, big_board, position_of(text, "@c3 "), "lead")
    renamed = apply_edits(text, edits[big_board.as_uri()])
    assert renamed == re.sub(r"@c3\b", "@lead", text).replace("\n  c3:\n", "\n  lead:\n")
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc_id(big_board)))
    assert symbols is not None and len(symbols) == 50 + 20 + 1000
    lines = types.Range(position_of(text, "- id: scene-500"), position_of(text, "- id: scene-510"))
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(doc_id(big_board), lines))
    assert [h.label for h in hints or []] == ["$3.78"] * 11
    assert await change(client, big_board, renamed, 2) == []
    typo = renamed.replace("@lead walks", "@leed walks", 1)
    assert [d.message for d in await change(client, big_board, typo, 3)] == [
        "unknown reference '@leed' (did you mean 'lead'?)"
    ]


# --- template files ------------------------------------------------------------------------------

SPOT = "{{ scene.subjects }} in {{ vars.place }},\nlit like @dawn.\n"


@pytest.fixture
def templated(film: Path) -> Path:
    """The elephant board with a third scene laid out by a template file, spot.j2."""
    text = film.read_text("utf-8").replace("vars:  ", "templates:\n  spot: spot.j2\n\nvars:  ", 1)
    text += '\n  - id: coda\n    template: spot\n    subjects: "@ellie waves"\n    duration: 5\n'
    film.write_text(text, "utf-8")
    (film.parent / "spot.j2").write_text(SPOT, "utf-8")
    return film


async def test_a_template_files_unsaved_problems_are_shown_in_it(client: LanguageClient, templated: Path) -> None:
    spot = templated.parent / "spot.j2"
    assert await open_doc(client, templated) == []
    typed = SPOT.replace("@dawn.", "@dawn; {{ vars.nope }}")
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(spot.as_uri(), "jinja", 1, typed))
    )
    shown = await diagnostics_of(client, spot)
    spot.write_text(typed, "utf-8")
    expected = [d for d in check_json(templated) if d["path"].endswith("spot.j2")]
    spot.write_text(SPOT, "utf-8")
    assert len(expected) == 1 and as_check(shown) == [
        (d["line"], d["col"], d["severity"], d["message"]) for d in expected
    ]
    assert await change(client, spot, SPOT, 2) == []  # fixed in the buffer: cleared


async def test_rename_reaches_the_template_files_a_board_uses(client: LanguageClient, templated: Path) -> None:
    text = templated.read_text("utf-8")
    await open_doc(client, templated)
    edits = await rename(client, templated, position_of(text, "@dawn", 0, 1), "sunrise")
    spot = (templated.parent / "spot.j2").as_uri()
    assert set(edits) == {templated.as_uri(), spot}
    assert apply_edits(SPOT, edits[spot]) == SPOT.replace("@dawn", "@sunrise")
    assert apply_edits(text, edits[templated.as_uri()]) == text.replace("@dawn", "@sunrise").replace(
        "\n  dawn:", "\n  sunrise:"
    )


# --- stills (examples/keyframes) -----------------------------------------------------------------


@pytest.fixture
def keyframes(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "keyframes", tmp_path / "film")
    (tmp_path / ".git").mkdir()
    return tmp_path / "film" / "board.yaml"


async def test_stills_in_the_outline_completion_and_definition(client: LanguageClient, keyframes: Path) -> None:
    text = keyframes.read_text("utf-8")
    assert await open_doc(client, keyframes) == []
    found = await client.text_document_document_symbol_async(types.DocumentSymbolParams(doc_id(keyframes)))
    stills = {s.name for s in found or [] if isinstance(s, types.DocumentSymbol) and s.kind == types.SymbolKind.File}
    assert stills == {"ellie-sheet", "meet-open"}
    to_still = await client.text_document_definition_async(
        types.DefinitionParams(doc_id(keyframes), position_of(text, "{still: meet-open}", 0, 10))
    )
    assert isinstance(to_still, types.Location)
    assert to_still.range.start == position_of(text, "  meet-open:", 0, 2)
    to_scene = await client.text_document_definition_async(
        types.DefinitionParams(doc_id(keyframes), position_of(text, "{last_frame_of: meet}", 0, 17))
    )
    assert isinstance(to_scene, types.Location) and to_scene.range.start == position_of(text, "id: meet", 0, 4)
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc_id(keyframes)))
    await diagnostics_of(client, keyframes)
    for typed, expected in (
        ("{still: m<|>}", {"ellie-sheet", "meet-open"}),
        ("{last_frame_of: <|>}", {"meet", "play"}),
    ):
        edited = text.replace("{still: meet-open}", typed, 1)
        assert labels(await complete(client, keyframes, edited, "<|>")) == expected
        client.text_document_did_close(types.DidCloseTextDocumentParams(doc_id(keyframes)))
        await diagnostics_of(client, keyframes)
