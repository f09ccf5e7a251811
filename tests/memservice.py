"""An in-memory render service: storyc's `RenderService` protocol, with no network, scriptable.

It is a real implementation of the protocol the ledger drives (not a mock of
storyc's functions): it keeps its own jobs, uploads and video bytes, and writes
downloads to disk atomically with their sha256 checked.  Tests script what the
next calls answer, and count what the "service" accepted, which is what money
is about.

    service = MemoryService()
    service.script("submit", "no_answer")      # accepted, but the answer is lost
    service.script("wait", "pending", "video")  # first wait can't tell, the next one finishes
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyc.compile.assets import LocalFile
from storyc.fsutil import atomic_write_bytes
from storyc.render.backends.base import Fetched, Gone, JobFailed, NoAnswer, NotSent, Pending, Refused, RemoteVideo
from storyc.render.run import RenderError, RunContext

SUBMIT_OUTCOMES = ("accept", "not_sent", "refused", "no_answer", "no_answer_not_accepted")
WAIT_OUTCOMES = ("video", "pending", "failed", "gone", "hang")
DOWNLOAD_OUTCOMES = ("ok", "pending", "gone")
UPLOAD_OUTCOMES = ("ok", "not_sent")


@dataclass
class MemoryJob:
    request_id: str
    endpoint: str
    arguments: dict[str, Any]
    video: bytes


@dataclass
class MemoryService:
    name: str = "memory"
    has_key: bool = True
    jobs: list[MemoryJob] = field(default_factory=list)  # every request the service accepted
    submit_calls: int = 0
    uploads: list[str] = field(default_factory=list)  # sha256 of each upload
    cancelled: list[str] = field(default_factory=list)
    on_submit: Callable[[], None] | None = None  # runs just before a submit is answered
    closed: bool = False
    _scripts: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def script(self, call: str, *outcomes: str) -> None:
        allowed = {"submit": SUBMIT_OUTCOMES, "wait": WAIT_OUTCOMES, "download": DOWNLOAD_OUTCOMES}
        allowed["upload"] = UPLOAD_OUTCOMES
        for outcome in outcomes:
            if outcome not in allowed[call]:
                raise ValueError(f"{call}: unknown outcome {outcome!r}; one of {allowed[call]}")
        with self._mutex:
            self._scripts[call].extend(outcomes)

    def _next(self, call: str, default: str) -> str:
        with self._mutex:
            queue = self._scripts[call]
            return queue.popleft() if queue else default

    def job(self, request_id: str) -> MemoryJob:
        return next(j for j in self.jobs if j.request_id == request_id)

    # --- the RenderService protocol -------------------------------------------------------------

    def check_credentials(self) -> None:
        if not self.has_key:
            raise RenderError("no key for the memory service; nothing was sent")

    def upload(self, local: LocalFile, ctx: RunContext) -> str:
        if self._next("upload", "ok") == "not_sent":
            raise NotSent(f"could not upload {local.written}: connection refused")
        self.uploads.append(local.sha256)
        return f"https://memory.invalid/uploads/{local.sha256.removeprefix('sha256:')}"

    def submit(self, endpoint: str, arguments: dict[str, Any], ctx: RunContext) -> str:
        ctx.check()
        outcome = self._next("submit", "accept")
        with self._mutex:
            self.submit_calls += 1
        if self.on_submit is not None:
            self.on_submit()
        if outcome == "not_sent":
            raise NotSent("the service is rate limiting (HTTP 429)")
        if outcome == "refused":
            raise Refused("the service refused the request (HTTP 422): prompt: too long", ("prompt",))
        if outcome == "no_answer_not_accepted":
            raise NoAnswer("the submit got no answer (ReadTimeout); the service may have accepted it")
        job = self._accept(endpoint, arguments)
        if outcome == "no_answer":
            raise NoAnswer("the submit got no answer (RemoteProtocolError); the service may have accepted it")
        return job.request_id

    def _accept(self, endpoint: str, arguments: dict[str, Any]) -> MemoryJob:
        with self._mutex:
            number = len(self.jobs) + 1
            video = f"video {number} for {endpoint}".encode() * 64
            job = MemoryJob(f"req-{number:04d}", endpoint, arguments, video)
            self.jobs.append(job)
            return job

    def wait(self, endpoint: str, request_id: str, ctx: RunContext, *, resumed: bool) -> RemoteVideo:
        ctx.check()
        outcome = self._next("wait", "video")
        while outcome == "hang":  # a long job: only the user's Ctrl-C (the stop flag) ends this wait
            ctx.sleep(0.01)
        if outcome == "pending":
            raise Pending("checking status failed 4 times; last: HTTP 500")
        if outcome == "failed":
            raise JobFailed("the job failed: content policy", ("prompt",))
        if outcome == "gone":
            raise Gone(f"the service does not know request {request_id} (HTTP 404)")
        job = self.job(request_id)
        return RemoteVideo(f"https://memory.invalid/videos/{request_id}.mp4", len(job.video))

    def wait_images(self, endpoint: str, request_id: str, ctx: RunContext, *, resumed: bool) -> tuple[RemoteVideo, ...]:
        video = self.wait(endpoint, request_id, ctx, resumed=resumed)  # the same outcomes; one "image" here
        return (video,)

    def probe(self, endpoint: str, request_id: str) -> str:
        known = [j for j in self.jobs if j.request_id == request_id and j.endpoint == endpoint]
        if not known:
            raise Gone(f"the service does not know request {request_id} (HTTP 404)")
        return "completed"

    def download(self, video: RemoteVideo, target: Path, ctx: RunContext, *, sha256: str | None = None) -> Fetched:
        ctx.check()
        outcome = self._next("download", "ok")
        if outcome == "pending":
            raise Pending("incomplete download: the connection ended after 1,024 bytes")
        if outcome == "gone":
            raise Gone(f"the video is no longer at {video.url} (HTTP 404)")
        request_id = video.url.rsplit("/", 1)[-1].removesuffix(".mp4")
        data = self.job(request_id).video
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if sha256 is not None and digest != sha256:
            raise Pending("the downloaded bytes do not match the recorded sha256")
        atomic_write_bytes(target, data)
        return Fetched(len(data), digest)

    def cancel(self, endpoint: str, request_id: str) -> None:
        self.cancelled.append(request_id)

    def close(self) -> None:
        self.closed = True
