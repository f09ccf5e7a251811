"""A sheet that follows your edits: `storyc sheet --watch` and `--serve`.

The page gets a small script that reloads it when the sheet is rewritten.
From disk (file://) it polls a side file, `BOARD.live.js`, written beside the
page with the sheet's version (a script tag may load a file a fetch may not);
served (`--serve`, on 127.0.0.1 only) it asks the server. The server also takes
a reviewer's pick of a still's candidate: `POST /__storyc/pick` with the
page's token (a random secret only the served page knows, so another site
open in the same browser can't make the request) writes `pick:` back into the
board through `storyc.compile.edit`, which keeps the file as written.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VERSION_PATH = "/__storyc/version"
PICK_PATH = "/__storyc/pick"
TOKEN_HEADER = "X-Storyc-Token"  # noqa: S105 - a header name, not a secret

_SCRIPT = """<script>/* storyc sheet --watch: reload when the sheet is rewritten */
(function () {
  var version = "%(version)s", side = "%(side)s", served = location.protocol !== "file:";
  function again() { setTimeout(poll, 700); }
  function check(seen) { if (seen && seen !== version) { location.reload(); } else { again(); } }
  function poll() {
    if (served) {
      fetch("%(version_path)s", {cache: "no-store"}).then(function (r) { return r.text(); })
        .then(check, again);
      return;
    }
    var s = document.createElement("script");
    s.src = side + "?" + Date.now();
    s.onload = function () { s.remove(); check(window.__storycSheet); };
    s.onerror = function () { s.remove(); again(); };
    document.head.appendChild(s);
  }
  window.storycPick = function (still, pick) {
    return fetch("%(pick_path)s", {method: "POST", headers: {"Content-Type": "application/json",
      "%(token_header)s": "%(token)s"}, body: JSON.stringify({still: still, pick: pick})});
  };
  again();
})();
</script>
"""


def version_of(html: str) -> str:
    return hashlib.sha256(html.encode("utf-8")).hexdigest()[:16]


def side_file(page: Path) -> Path:
    """`board.html` -> `board.live.js`, the file a page opened from disk polls."""
    return page.with_name(page.stem + ".live.js")


def with_reload(html: str, page: Path, token: str, version: str) -> str:
    """The page with the reload script (and, served, the pick request) before `</body>`."""
    script = _SCRIPT % {
        "version": version,
        "side": side_file(page).name,
        "version_path": VERSION_PATH,
        "pick_path": PICK_PATH,
        "token_header": TOKEN_HEADER,
        "token": token,
    }
    at = html.rfind("</body>")
    return html[:at] + script + html[at:] if at >= 0 else html + script


def write_side_file(page: Path, version: str) -> None:
    from storyc.fsutil import atomic_write_bytes

    atomic_write_bytes(side_file(page), f'window.__storycSheet = "{version}";\n'.encode())


@dataclass
class LiveState:
    """What the server answers with: the current sheet's version, and who may pick."""

    version: str = ""
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lock: threading.Lock = field(default_factory=threading.Lock)


Pick = Callable[[str, int], str]  # (still, pick) -> a message; raises ValueError for a refusal


def serve(folder: Path, state: LiveState, pick: Pick, port: int = 0) -> ThreadingHTTPServer:
    """Serve `folder` on 127.0.0.1 (port 0: any free one) in a daemon thread; the caller shuts it down."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a request log on the terminal would drown what the command says

        def do_GET(self) -> None:
            if self.path.split("?")[0] == VERSION_PATH:
                self._answer(HTTPStatus.OK, state.version.encode(), "text/plain")
                return
            super().do_GET()

        def do_POST(self) -> None:
            if self.path != PICK_PATH:
                self._answer(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            if not secrets.compare_digest(self.headers.get(TOKEN_HEADER, ""), state.token):
                self._answer(
                    HTTPStatus.FORBIDDEN, b"this page may not pick (reload it from storyc's server)", "text/plain"
                )
                return
            try:
                still, number = _pick_request(self.rfile.read(min(int(self.headers.get("Content-Length", "0")), 4096)))
                with state.lock:
                    message = pick(still, number)
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                self._answer(HTTPStatus.BAD_REQUEST, str(exc).encode(), "text/plain")
                return
            self._answer(HTTPStatus.OK, message.encode(), "text/plain")

        def _answer(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="storyc-sheet-server", daemon=True).start()
    return server


def url_of(server: ThreadingHTTPServer, page: Path) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{page.name}"


def _pick_request(body: bytes) -> tuple[str, int]:
    data = json.loads(body or b"{}")
    still, number = data["still"], data["pick"]
    if not isinstance(still, str) or not isinstance(number, int) or isinstance(number, bool):
        raise ValueError('a pick is {"still": NAME, "pick": N}')  # noqa: TRY004 - answered as a 400
    return still, number


def watched(folder: Path, ignored: set[Path]) -> Callable[[Any, str], bool]:
    """A watchfiles filter: the board's folder, less what storyc writes itself and hidden files."""
    ignored = {p.resolve() for p in ignored}

    def keep(change: Any, path: str) -> bool:
        found = Path(path)
        if found.resolve() in ignored:
            return False
        parts = found.relative_to(folder).parts if found.is_relative_to(folder) else found.parts
        return not any(part.startswith(".") for part in parts)  # .storyc/, .git/, temporary files

    return keep
