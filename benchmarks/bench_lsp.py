"""Language server benchmark: from an edit (didChange) to its diagnostics (publishDiagnostics), and memory.

Starts `storyc lsp` as an editor would (stdio), opens a generated board (benchmarks/bench_compile.py's:
50 characters, 20 styles, 3 shots a scene), then types N edits one at a time, each waiting for its
diagnostics; prints the median and range of those latencies, the server's resident memory, and
where one check's time goes in-process (loading the buffer against compiling it).

    python benchmarks/bench_lsp.py            # 1,000 scenes, 9 edits
    python benchmarks/bench_lsp.py 100 15     # 100 scenes, 15 edits
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_compile import board_text, make_assets
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from storyc.lsp.server import DEBOUNCE_SECONDS


def rss_kib(pid: int) -> tuple[int, int]:
    """(resident now, peak resident) of a process, in KiB (Linux)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def edit_latencies(board: Path, edits: int) -> tuple[list[float], list[float], tuple[int, int]]:
    """Each edit's seconds from didChange to publishDiagnostics, the server's own check times, its memory."""
    client = LanguageClient("bench", "1")
    checks: list[float] = []
    published: asyncio.Queue[tuple[float, types.PublishDiagnosticsParams]] = asyncio.Queue()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
        published.put_nowait((time.perf_counter(), params))

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params: types.LogMessageParams) -> None:
        if params.message.startswith("storyc lsp: checked "):  # "... in 123 ms": the compile, on the worker
            checks.append(float(params.message.rsplit(" in ", 1)[1].removesuffix(" ms")) / 1000)

    await client.start_io(sys.executable, "-m", "storyc", "lsp")
    await client.initialize_async(types.InitializeParams(types.ClientCapabilities(), root_uri=board.parent.as_uri()))
    client.initialized(types.InitializedParams())
    text = board.read_text("utf-8")
    uri = board.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "yaml", 1, text)))
    await published.get()
    latencies = []
    for n in range(edits):
        typed = text.replace("beat 0.", f"beat 0, take {n}.", 1)  # one prompt changes, as when typing
        sent = time.perf_counter()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=n + 2, uri=uri),
                [types.TextDocumentContentChangeWholeDocument(text=typed)],
            )
        )
        arrived, _ = await published.get()
        latencies.append(arrived - sent)
    server = client._server  # the subprocess pygls started
    memory = rss_kib(server.pid) if server is not None else (0, 0)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return latencies, checks[-edits:], memory


def split_in_process(board: Path) -> tuple[float, float]:
    """Seconds of one check in this process: (loading the buffer, compiling it), best of 3."""
    from storyc.compile.pipeline import compile_doc
    from storyc.compile.source import load
    from storyc.diagnostics import Diagnostics
    from storyc.lsp.overlay import Overlay

    files = Overlay({board: board.read_text("utf-8")})
    loads, compiles = [], []
    for _ in range(3):
        start = time.perf_counter()
        doc = load(board, Diagnostics("board.yaml"), files)
        loaded = time.perf_counter()
        assert doc is not None
        compile_doc(doc, Diagnostics("board.yaml"))
        loads.append(loaded - start)
        compiles.append(time.perf_counter() - loaded)
    return min(loads), min(compiles)


def main() -> None:
    scenes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    edits = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        make_assets(root)
        board = root / "board.yaml"
        board.write_text(board_text(scenes), "utf-8")
        latencies, checks, (rss, peak) = asyncio.run(edit_latencies(board, edits))
        load_s, compile_s = split_in_process(board)
    ms = sorted(1000 * s for s in latencies)
    print(f"{scenes} scenes, {edits} edits: didChange -> publishDiagnostics median {statistics.median(ms):.0f} ms")
    print(f"  min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms (the {1000 * DEBOUNCE_SECONDS:.0f} ms debounce included)")
    check_ms = 1000 * statistics.median(checks)
    print(f"  of which the server's check (load, then compile in each profile): median {check_ms:.0f} ms")
    print(f"  server memory after the edits: {rss / 1024:.0f} MiB resident, {peak / 1024:.0f} MiB peak")
    print(f"  one check in-process: load (parse) {1000 * load_s:.0f} ms, compile {1000 * compile_s:.0f} ms")


if __name__ == "__main__":
    main()
