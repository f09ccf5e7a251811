"""Showing a render as it happens: a live table on a terminal, one line per change otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

_STYLES = {
    "done": "green",
    "cached": "green",
    "failed": "bold red",
    "lost": "bold red",
    "download failed": "red",
    "queued": "yellow",
    "running": "cyan",
    "waiting": "dim",
}


class LineProgress:
    """For logs and CI: one line per state change, to stderr."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._mutex = threading.Lock()
        self._last: dict[str, tuple[str, str]] = {}

    def update(self, scene: str, state: str, detail: str = "") -> None:
        with self._mutex:
            if self._last.get(scene) == (state, detail):
                return
            self._last[scene] = (state, detail)
            self.stream.write(f"{scene}: {state}{' (' + detail + ')' if detail else ''}\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        with self._mutex:
            self.stream.write(message + "\n")
            self.stream.flush()


class LiveProgress:
    """For a terminal: a table of every scene with its state, detail and elapsed time (rich)."""

    def __init__(self, scenes: Sequence[str], console: Console | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._mutex = threading.Lock()
        self._rows: dict[str, list[str]] = {s: ["waiting", ""] for s in scenes}
        self._started: dict[str, float] = {}
        self._ended: dict[str, float] = {}
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        self._live = Live(get_renderable=self._table, console=self.console, refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, scene: str, state: str, detail: str = "") -> None:
        with self._mutex:
            now = time.monotonic()
            self._started.setdefault(scene, now)
            if state in ("done", "cached", "failed", "lost", "download failed", "interrupted"):
                self._ended[scene] = now
            self._rows[scene] = [state, detail]

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False)

    def _table(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for column in ("scene", "state", "elapsed", "detail"):
            table.add_column(column, no_wrap=column != "detail", overflow="fold")
        now = time.monotonic()
        with self._mutex:
            for scene, (state, detail) in self._rows.items():
                began = self._started.get(scene)
                elapsed = "" if began is None else f"{self._ended.get(scene, now) - began:5.1f}s"
                style = _STYLES.get(state, "")
                table.add_row(Text(scene), Text(state, style=style), elapsed, Text(detail))  # Text: no markup
        return table
