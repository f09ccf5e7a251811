"""`storyc lsp` driven by a real LSP client over stdio (pytest-lsp starts it as a subprocess).

Every feature is checked on the elephant example (copied, so edits and locks are the test's own) and
on a generated 1,000-scene board: diagnostics agree with `storyc check` and follow the unsaved
buffer, positions are 0-based UTF-16, and no request, however odd, stops the server.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
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
# standard endpoint (the draft profile) and a warning on 4K (final).
EDITED = {
    "  noir:\n": "  extra: refs/dawn-palette.jpg\n  more: refs/dawn-palette.jpg\n  noir:\n",
    '    aspect_ratio: "9:16"       # per-scene override of target.*\n': "    with: [dawn, extra, more]\n",
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
    for version, name in enumerate(("@b", "@ba", "@bal", "@balx", "@balxy"), 2):
        document = types.VersionedTextDocumentIdentifier(version=version, uri=film.as_uri())
        typed = types.TextDocumentContentChangeWholeDocument(text=saved.replace("@ball enters", f"{name} enters"))
        client.text_document_did_change(types.DidChangeTextDocumentParams(document, [typed]))
    messages = [d.message for d in await diagnostics_of(client, film)]
    assert any("'@balxy'" in m for m in messages) and not any("'@bal'" in m for m in messages), messages
    with pytest.raises(TimeoutError):  # the earlier versions were never checked
        await asyncio.wait_for(client.wait_for_notification(DIAGNOSTICS), 2)
