"""What a paid render service does, and the answers it gives, in storyc's terms.

A service (fal, or an in-memory one in tests) only talks to its service: it
uploads, submits, waits, downloads and cancels, and says what happened.  It
never reads or writes the lock: the ledger in front of it (`storyc.render.ledger`)
decides what to send and records every step.

The answers are chosen for money: each exception says whether a request may
have been paid for, so the ledger knows whether trying again could pay twice.

- `NotSent`: proven not accepted (429, a second 408, connection refused, an
  upload failed): nothing was paid; trying again later is safe.
- `Refused`: the service answered the submit with a definitive refusal (a 4xx
  but 408, 409 and 429): not accepted, nothing paid, trying again unchanged
  will fail the same way.
- `NoAnswer`: the submit was sent and its outcome is unknown (no answer, a
  409 conflict, a 5xx, a dropped connection): the service may have accepted
  it. Whatever does not prove "not accepted" is this, never `Refused`.
- `JobFailed`: an accepted job ended in a definitive failure.
- `Pending`: the job's state could not be learnt now (5xx, timeouts, an
  unexpected status): it stays submitted and is resumed later by its id.
- `Gone`: the service says it does not know this request or file (404/410);
  whether that means "lost" depends on how long ago it was sent.

An answer's text is mostly the service's own words (a 422's details, a failed
job's error), which may echo the key it was sent: every answer is scrubbed of
the environment's secrets (`storyc.diagnostics.redact`) as it is made, so no
output, lock `error:` or team store note can carry the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from storyc.compile.assets import LocalFile
from storyc.diagnostics import redact
from storyc.render.run import RunContext


class ServiceAnswer(Exception):
    """Base of what a service says instead of a result."""

    def __init__(self, message: str, field_path: Sequence[Any] = ()) -> None:
        super().__init__(redact(message))  # the service's words may echo the key (see above)
        self.field_path = tuple(field_path)  # the request field it is about, e.g. ("prompt",)


class NotSent(ServiceAnswer):
    """Proven not accepted: nothing was paid."""


class Refused(ServiceAnswer):
    """The submit was refused for good (a 4xx but 408/409/429): not accepted, nothing paid."""


class NoAnswer(ServiceAnswer):
    """The submit was sent and no answer was learnt: the service may have accepted it."""


class JobFailed(ServiceAnswer):
    """An accepted job failed for good (an error in its final status, a 4xx result)."""


class Pending(ServiceAnswer):
    """The job's state could not be learnt now; it stays submitted."""


class Gone(ServiceAnswer):
    """The service no longer (or not yet) knows this request or file."""


@dataclass(frozen=True)
class RemoteVideo:
    url: str
    bytes: int | None = None  # as announced by the service


@dataclass(frozen=True)
class Fetched:
    bytes: int
    sha256: str  # "sha256:<hex>"


class RenderService(Protocol):
    """A paid service, as the ledger uses it. Every method may raise the answers above."""

    name: str

    def check_credentials(self) -> None:
        """Raise RenderError when nothing could be sent (no API key...)."""

    def upload(self, local: LocalFile, ctx: RunContext) -> str:
        """Upload a local asset; its URL. Raises NotSent."""

    def submit(self, endpoint: str, arguments: dict[str, Any], ctx: RunContext) -> str:
        """Send one request, once; its request id. Raises NotSent, Refused or NoAnswer."""

    def wait(self, endpoint: str, request_id: str, ctx: RunContext, *, resumed: bool) -> RemoteVideo:
        """Wait for an accepted job's video. Raises JobFailed, Pending or Gone."""

    def wait_images(self, endpoint: str, request_id: str, ctx: RunContext, *, resumed: bool) -> tuple[RemoteVideo, ...]:
        """Wait for an accepted image job (a still): its images, in order. Raises as `wait`."""

    def probe(self, endpoint: str, request_id: str) -> str:
        """What the service says of a request now: queued, running or completed.

        Raises Gone when it does not know the request, JobFailed when it was cancelled, Pending
        when it can't tell (a refused key, no answer).
        """

    def download(self, video: RemoteVideo, target: Path, ctx: RunContext, *, sha256: str | None = None) -> Fetched:
        """Fetch the video to `target` atomically, verified. Raises Pending or Gone."""

    def cancel(self, endpoint: str, request_id: str) -> None:
        """Ask the service to stop a job (best effort; may raise anything)."""

    def close(self) -> None:
        """Release connections."""
