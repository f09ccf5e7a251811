"""`storyc lsp`: the language server, over stdio (pygls).

Open buffers are the truth: every compile reads them through an `Overlay`, so diagnostics
follow what is typed.  A change is compiled after a short pause (`DEBOUNCE_SECONDS`), on one
worker thread, so requests are answered while a big board compiles; a compile whose buffer changed
meanwhile is not published (the next one is on its way).  Each handler answers empty rather than
fail: a bug is logged to the client and the server goes on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from storyc import __version__
from storyc.compile.source import display_path
from storyc.compile.validate import TEMPLATE_FILE_SUFFIXES
from storyc.diagnostics import Diagnostic
from storyc.lsp import features
from storyc.lsp.analysis import Analysis, analyse
from storyc.lsp.completion import Candidate, candidates
from storyc.lsp.positions import UTF16, LineIndex, Point

DEBOUNCE_SECONDS = 0.05  # typing pauses longer than this between words; a compile is not wasted on each key
BOARD_SUFFIXES = (".yaml", ".yml")
BOARD_NAMES = ("board.yaml", "board.yml")
log = logging.getLogger("storyc.lsp")

R = TypeVar("R")


def path_of(uri: str) -> Path | None:
    """The file a `file:` uri names (drive letters and UNC shares included); None for other schemes."""
    path = to_fs_path(uri)
    return Path(path).resolve() if path is not None else None


class BoardServer:
    """The server's state: the last analysis of each open board, and the compiles under way."""

    def __init__(self) -> None:
        self.ls = LanguageServer("storyc", __version__)
        self.analyses: dict[str, Analysis] = {}
        self.parsed: dict[str, Analysis] = {}  # the last analysis that parsed: names to complete while typing
        self.published: dict[str, set[str]] = {}  # board uri -> uris it published diagnostics to
        self.generation: dict[str, int] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storyc-compile")
        self._register()

    # --- plumbing ------------------------------------------------------------------------------

    def _register(self) -> None:
        handlers: list[tuple[str, Any, Callable[[Any], Any]]] = [
            (types.TEXT_DOCUMENT_DID_OPEN, None, self.did_open),
            (types.TEXT_DOCUMENT_DID_CHANGE, None, self.did_change),
            (types.TEXT_DOCUMENT_DID_SAVE, None, self.did_save),
            (types.TEXT_DOCUMENT_DID_CLOSE, None, self.did_close),
            (
                types.TEXT_DOCUMENT_COMPLETION,
                types.CompletionOptions(trigger_characters=["@", " ", "/"]),
                self.completion,
            ),
            (types.TEXT_DOCUMENT_HOVER, None, self.hover),
            (types.TEXT_DOCUMENT_DEFINITION, None, self.definition),
            (types.TEXT_DOCUMENT_RENAME, None, self.rename),
            (types.TEXT_DOCUMENT_DOCUMENT_SYMBOL, None, self.symbols),
            (types.TEXT_DOCUMENT_INLAY_HINT, None, self.inlay_hints),
        ]
        for method, options, handler in handlers:
            self.ls.feature(method, options)(_function(handler))

    @property
    def encoding(self) -> str:
        return str(self.ls.workspace.position_encoding or UTF16)

    def log_error(self, what: str, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc))
        log.error("%s: %s", what, text)
        self.ls.window_log_message(types.LogMessageParams(types.MessageType.Error, f"storyc lsp: {what}: {text}"))

    def buffers(self) -> dict[Path, str]:
        """Every open document's text, by absolute path."""
        found: dict[Path, str] = {}
        for uri, document in self.ls.workspace.text_documents.items():
            path = path_of(uri)
            if path is not None:
                found[path] = document.source
        return found

    def read(self, path: Path) -> str:
        """A file's text as the editor has it: its buffer when open, else the disk."""
        buffer = self.buffers().get(path.resolve())
        return buffer if buffer is not None else path.read_text(encoding="utf-8")

    # --- documents -----------------------------------------------------------------------------

    def did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        self.changed(params.text_document.uri, delay=0)

    def did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        self.changed(params.text_document.uri, delay=DEBOUNCE_SECONDS)

    def did_save(self, params: types.DidSaveTextDocumentParams) -> None:
        self.changed(params.text_document.uri, delay=0)

    def did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        self.generation[uri] = self.generation.get(uri, 0) + 1  # a check still under way publishes nothing
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        for target in self.published.pop(uri, set()) | {uri}:
            self.ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(target, []))
        self.analyses.pop(uri, None)
        self.parsed.pop(uri, None)
        if _is_template(uri):
            self.recheck_boards()

    def changed(self, uri: str, delay: float) -> None:
        if self.is_board(uri):
            self.schedule(uri, delay)
        elif _is_template(uri):  # the boards that may use it say what is wrong with it
            self.recheck_boards(delay)

    def is_board(self, uri: str) -> bool:
        """Whether an open document is a board (an editor may send every YAML file it opens: CI workflows too)."""
        document = self.ls.workspace.text_documents.get(uri)
        return document is not None and (uri in self.analyses or looks_like_board(uri, document.source))

    def recheck_boards(self, delay: float = 0) -> None:
        for uri in list(self.ls.workspace.text_documents):
            if self.is_board(uri):
                self.schedule(uri, delay)

    def schedule(self, uri: str, delay: float) -> None:
        self.generation[uri] = generation = self.generation.get(uri, 0) + 1
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self.check(uri, generation, delay))

    async def check(self, uri: str, generation: int, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            analysis = await self.analyse(uri)
            if analysis is None or self.generation.get(uri) != generation:
                return  # closed, or typed into since: the newer compile publishes
            self.publish(uri, analysis)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log_error(f"checking {uri} failed", exc)
        finally:
            if self.pending.get(uri) is asyncio.current_task():
                del self.pending[uri]

    async def analyse(self, uri: str) -> Analysis | None:
        """A fresh analysis of the board as its buffer is now (compiled on the worker thread)."""
        path = path_of(uri)
        if path is None or not self.is_board(uri):
            return None
        loop = asyncio.get_running_loop()
        analysis = await loop.run_in_executor(self.compiler, self._timed, loop, uri, path, self.buffers())
        self.analyses[uri] = analysis
        if analysis.doc is not None:
            self.parsed[uri] = analysis
        return analysis

    def _timed(self, loop: asyncio.AbstractEventLoop, uri: str, path: Path, buffers: dict[Path, str]) -> Analysis:
        """`analyse`, on the worker thread; its time goes to the client's log (even when no one waits for it)."""
        started = time.perf_counter()
        # What the server holds (the last analysis of each board: tens of MB for a big board) is not
        # garbage: frozen, the collections a compile triggers skip it, instead of walking it each time.
        gc.freeze()
        try:
            return analyse(path, display_path(path), buffers)
        finally:
            gc.unfreeze()
            took = f"storyc lsp: checked {uri} in {1000 * (time.perf_counter() - started):.0f} ms"
            loop.call_soon_threadsafe(self.ls.window_log_message, types.LogMessageParams(types.MessageType.Log, took))

    async def current(self, uri: str) -> Analysis | None:
        """The analysis of the buffer as it is now: the last one, or a new one when it was typed into since."""
        analysis = self.analyses.get(uri)
        document = self.ls.workspace.text_documents.get(uri)
        if document is None:
            return None
        if analysis is not None and analysis.text == document.source:
            return analysis
        return await self.analyse(uri)

    def publish(self, uri: str, analysis: Analysis) -> None:
        by_file: dict[str, list[types.Diagnostic]] = {uri: []}
        texts: dict[Path, LineIndex] = {}
        for diagnostic in analysis.diagnostics:
            target, lines = self._file_of(diagnostic, analysis, uri, texts)
            by_file.setdefault(target, []).append(_lsp_diagnostic(diagnostic, lines))
        for gone in self.published.get(uri, set()) - by_file.keys():
            by_file[gone] = []
        self.published[uri] = set(by_file) - {uri}
        for target, found in by_file.items():
            self.ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(target, found))

    def _file_of(
        self, diagnostic: Diagnostic, analysis: Analysis, uri: str, texts: dict[Path, LineIndex]
    ) -> tuple[str, LineIndex]:
        """The uri a diagnostic belongs to (the board, or a template file) and that file's lines."""
        if diagnostic.path == analysis.display:
            return uri, analysis.lines(self.encoding)
        path = Path(diagnostic.path).resolve()  # relative to the working directory, as check shows it
        if path not in texts:
            try:
                texts[path] = LineIndex(self.read(path), self.encoding)
            except (OSError, UnicodeDecodeError):
                texts[path] = LineIndex("", self.encoding)
        return features.file_uri(path), texts[path]

    def offset(self, analysis: Analysis, position: types.Position) -> int:
        return analysis.lines(self.encoding).offset(Point(position.line, position.character))

    # --- requests ------------------------------------------------------------------------------

    def completion(self, params: types.CompletionParams) -> types.CompletionList | None:
        try:
            return self._completion(params)
        except Exception as exc:
            self.log_error("completion failed", exc)
            return None

    def _completion(self, params: types.CompletionParams) -> types.CompletionList | None:
        uri = params.text_document.uri
        document = self.ls.workspace.text_documents.get(uri)
        path = path_of(uri)
        if document is None or path is None or not self.is_board(uri):
            return None
        lines = LineIndex(document.source, self.encoding)
        line = lines.line_text(params.position.line)
        cursor = (
            lines.offset(Point(params.position.line, params.position.character))
            - lines.starts[min(params.position.line, len(lines.starts) - 1)]
        )
        above = [lines.line_text(n) for n in range(min(params.position.line, len(lines.starts)))]
        known = self.parsed.get(uri) or self.analyses.get(uri)
        found = candidates(line[:cursor], above, known, path)
        items = [_completion_item(c, params.position, line[:cursor], self.encoding) for c in found]
        return types.CompletionList(is_incomplete=False, items=items)

    async def on_board(self, what: str, uri: str, answer: Callable[[Analysis], R]) -> R | None:
        """`answer` of the board as it is now; None for a document that is not an open board, or on a
        bug (logged): one request's failure never stops the server."""
        try:
            analysis = await self.current(uri)
            return None if analysis is None else answer(analysis)
        except Exception as exc:
            self.log_error(f"{what} failed", exc)
            return None

    async def hover(self, params: types.HoverParams) -> types.Hover | None:
        markdown = self._markdown()
        return await self.on_board(
            "hover",
            params.text_document.uri,
            lambda a: features.hover(a, self.offset(a, params.position), self.encoding, markdown),
        )

    def _markdown(self) -> bool:
        hover = self.ls.client_capabilities.text_document and self.ls.client_capabilities.text_document.hover
        formats = (hover.content_format if hover else None) or []
        return types.MarkupKind.Markdown in formats

    async def definition(self, params: types.DefinitionParams) -> types.Location | None:
        return await self.on_board(
            "definition",
            params.text_document.uri,
            lambda a: features.definition(a, self.offset(a, params.position), self.encoding),
        )

    async def rename(self, params: types.RenameParams) -> types.WorkspaceEdit | None:
        return await self.on_board("rename", params.text_document.uri, lambda a: self._rename(a, params))

    def _rename(self, analysis: Analysis, params: types.RenameParams) -> types.WorkspaceEdit | None:
        offset = self.offset(analysis, params.position)
        try:
            return features.rename(analysis, offset, params.new_name, self.encoding, self.read)
        except features.RenameRefused as exc:
            self.ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, str(exc)))
            return None

    async def symbols(self, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
        return await self.on_board(
            "document symbols", params.text_document.uri, lambda a: features.symbols(a, self.encoding)
        )

    async def inlay_hints(self, params: types.InlayHintParams) -> list[types.InlayHint] | None:
        lines = params.range.start.line, params.range.end.line
        return await self.on_board(
            "inlay hints", params.text_document.uri, lambda a: features.price_hints(a, *lines, self.encoding)
        )


def _function(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A plain function calling a bound method (pygls marks its handlers with attributes, which methods refuse)."""
    if asyncio.iscoroutinefunction(method):

        async def answer(params: Any) -> Any:
            return await method(params)

        return answer

    def handle(params: Any) -> Any:
        return method(params)

    return handle


_SCENES_KEY = re.compile(r"^scenes[ \t]*:", re.MULTILINE)


def looks_like_board(uri: str, text: str) -> bool:
    """A YAML file named board.yaml, or with a top-level `scenes:` or the storyboard schema's modeline."""
    name = urlparse(uri).path.rsplit("/", 1)[-1].lower()
    if not name.endswith(BOARD_SUFFIXES):
        return False
    return name in BOARD_NAMES or "storyboard.schema.json" in text[:1000] or _SCENES_KEY.search(text) is not None


def _is_template(uri: str) -> bool:
    return urlparse(uri).path.lower().endswith(TEMPLATE_FILE_SUFFIXES)


_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}


def _lsp_diagnostic(diagnostic: Diagnostic, lines: LineIndex) -> types.Diagnostic:
    """storyc's diagnostic at its 1-based line and column (characters), as LSP's 0-based code units,
    with its rule code (SC031); the message is check's, with the profiles it is found in."""
    message, severity, code = diagnostic.text, _SEVERITY[diagnostic.severity], diagnostic.code or None
    if diagnostic.loc is None:
        at = types.Position(0, 0)
        return types.Diagnostic(types.Range(at, at), message, severity, code=code, source="storyc")
    start = lines.loc_offset(diagnostic.loc)
    end = start + diagnostic.width if diagnostic.width else _word_end(lines.text, start)  # the caret's span
    first, last = lines.point(start), lines.point(min(end, len(lines.text)))
    where = types.Range(types.Position(first.line, first.unit), types.Position(last.line, last.unit))
    return types.Diagnostic(where, message, severity, code=code, source="storyc")


def _word_end(text: str, start: int) -> int:
    """Where the token starting at `start` ends, within its line: what the editor underlines."""
    end = start
    while end < len(text) and text[end] not in " \t\r\n:,]}#":
        end += 1
    return end if end > start or start >= len(text) or text[start] == "\n" else start + 1


def _completion_item(
    candidate: Candidate, position: types.Position, prefix: str, encoding: str
) -> types.CompletionItem:
    typed = prefix[len(prefix) - candidate.replace_from :] if candidate.replace_from else ""
    start = types.Position(position.line, position.character - LineIndex(typed, encoding).point(len(typed)).unit)
    insert = candidate.insert or candidate.label
    return types.CompletionItem(
        label=candidate.label,
        kind=_ITEM_KIND.get(candidate.kind, types.CompletionItemKind.Value),
        detail=candidate.detail,
        documentation=candidate.documentation,
        filter_text=candidate.label,
        text_edit=types.TextEdit(types.Range(start, position), insert),
    )


_ITEM_KIND = {
    "character": types.CompletionItemKind.Class,
    "style": types.CompletionItemKind.Color,
    "key": types.CompletionItemKind.Property,
    "profile": types.CompletionItemKind.EnumMember,
    "scene": types.CompletionItemKind.Event,
    "still": types.CompletionItemKind.File,
    "template": types.CompletionItemKind.Module,
    "file": types.CompletionItemKind.File,
}


def serve() -> None:
    """Answer an editor on stdin/stdout until it says exit."""
    logging.basicConfig(level=logging.WARNING, format="storyc lsp: %(message)s")
    BoardServer().ls.start_io()
