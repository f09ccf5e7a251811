"""The fake fal service, driven by the real fal_client 1.0.3 (no mocks)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fal_client
import fal_client.client as fc
import httpx
import pytest
from fakefal import FakeFal
from fakefal.plugin import fast_retries, point_fal_client

APP = "fal-ai/kling-video/o3/4k/reference-to-video"
OK = {"prompt": "an elephant plays with a ball", "duration": "3", "aspect_ratio": "9:16"}


class ManualClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def client(fake_fal: FakeFal) -> Iterator[fal_client.SyncClient]:
    c = fal_client.SyncClient(key=fake_fal.key)
    yield c
    if "_client" in c.__dict__:
        c._client.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def manual_fal(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> Iterator[FakeFal]:
    """A fake whose time only moves when the test says so."""
    with FakeFal(clock=clock, job_seconds=10.0, video_mode="stub") as server:
        point_fal_client(server, monkeypatch)
        yield server
        assert server.internal_errors == []


@pytest.fixture
def manual_client(manual_fal: FakeFal) -> Iterator[fal_client.SyncClient]:
    c = fal_client.SyncClient(key=manual_fal.key)
    yield c
    if "_client" in c.__dict__:
        c._client.close()


def ffmpeg_info(data: bytes, tmp_path: Path) -> str:
    import imageio_ffmpeg

    path = tmp_path / "probe.mp4"
    path.write_bytes(data)
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=30
    )
    return proc.stderr


def png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (400, 320), "red").save(buf, "PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- queue round trip


def test_round_trip_submit_status_result(fake_fal: FakeFal, client: fal_client.SyncClient, tmp_path: Path) -> None:
    fake_fal.job_seconds = 0.3  # long enough that the first poll surely sees IN_PROGRESS
    handle = client.submit(APP, OK)
    uuid.UUID(handle.request_id)  # a real uuid4
    base = f"{fake_fal.url}/fal-ai/kling-video/requests/{handle.request_id}"
    assert (handle.response_url, handle.status_url, handle.cancel_url) == (base, base + "/status", base + "/cancel")

    events = list(handle.iter_events(with_logs=True, interval=0.01))
    assert isinstance(events[-1], fal_client.Completed)
    assert all(isinstance(e, fal_client.InProgress) for e in events[:-1])
    last = events[-1]
    assert isinstance(last, fal_client.Completed) and last.error is None
    assert last.metrics["inference_time"] == pytest.approx(fake_fal.job_seconds, abs=0.02)
    assert any("Starting" in log["message"] for log in last.logs or [])

    result = handle.get(interval=0.01)
    video = result["video"]
    assert video["content_type"] == "video/mp4"
    assert video["file_name"] == "output.mp4"
    data = httpx.get(video["url"], timeout=10).content
    assert len(data) == video["file_size"] > 0
    info = ffmpeg_info(data, tmp_path)
    assert "Duration: 00:00:03.00" in info
    assert re.search(r"Video: h264.* 90x160", info), info

    submit = fake_fal.records("submit")[0]
    assert submit.headers["authorization"] == f"Key {fake_fal.key}"
    assert submit.json == OK
    assert submit.response_json["status"] == "IN_QUEUE"
    assert submit.response_json["gateway_request_id"] == handle.request_id
    assert isinstance(submit.response_json["queue_position"], int)
    statuses = [r.status for r in fake_fal.status_calls(handle.request_id)]
    done = statuses.index(200)  # iter_events stops at the first 200; get() polls once more
    assert done > 0 and set(statuses[:done]) == {202} and statuses[done:] == [200, 200]
    assert fake_fal.submits == [OK]
    assert fake_fal.job(handle.request_id).video_url == video["url"]


def test_status_logs_are_null_unless_asked(manual_fal: FakeFal, manual_client: fal_client.SyncClient) -> None:
    handle = manual_client.submit(APP, OK)
    assert manual_client.status(APP, handle.request_id) == fal_client.InProgress(logs=None)
    with_logs = handle.status(with_logs=True)
    assert isinstance(with_logs, fal_client.InProgress)
    assert with_logs.logs and with_logs.logs[0]["level"] == "INFO"
    queries = [r.query for r in manual_fal.status_calls(handle.request_id)]
    assert queries == [{"logs": "false"}, {"logs": "true"}]


def test_queue_positions_with_concurrency_one(
    manual_fal: FakeFal, manual_client: fal_client.SyncClient, clock: ManualClock
) -> None:
    manual_fal.concurrency = 1
    handles = [manual_client.submit(APP, {**OK, "prompt": f"shot {i}"}) for i in range(3)]
    assert [h.status() for h in handles] == [
        fal_client.InProgress(logs=None),
        fal_client.Queued(position=0),
        fal_client.Queued(position=1),
    ]
    raw = httpx.get(handles[2].status_url, headers={"Authorization": f"Key {manual_fal.key}"})
    assert raw.status_code == 202 and raw.json()["queue_position"] == 1

    clock.advance(10.0)  # the first finishes; the second starts at that very moment
    states = [h.status() for h in handles]
    assert isinstance(states[0], fal_client.Completed)
    assert states[1:] == [fal_client.InProgress(logs=None), fal_client.Queued(position=0)]
    first, second = manual_fal.job(handles[0].request_id), manual_fal.job(handles[1].request_id)
    assert second.started_at == first.finished_at

    clock.advance(25.0)  # both remaining ones run back to back
    assert [j.status for j in manual_fal.jobs] == ["COMPLETED"] * 3
    assert manual_fal.jobs[2].finished_at == pytest.approx(first.submitted_at + 30.0)


def test_module_level_functions_and_resume_by_request_id(fake_fal: FakeFal) -> None:
    handle = fal_client.submit(APP, OK)
    assert isinstance(fal_client.status(APP, handle.request_id), fal_client.Status)
    result = fal_client.sync_client.get_handle(APP, handle.request_id).get(interval=0.01)
    assert result["video"]["url"].startswith(fake_fal.url + "/files/")
    assert fake_fal.records("submit")[0].headers["authorization"] == f"Key {fake_fal.key}"


def test_run_is_synchronous(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    result = client.run(APP, OK)
    assert result["video"]["file_size"] > 0
    assert fake_fal.count("run") == 1 and fake_fal.jobs[0].via == "run"


# --------------------------------------------------------------------------- retries and faults


def test_429_on_submit_is_retried(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.fail_next("submit", 429, count=2)
    handle = client.submit(APP, OK)
    assert [r.status for r in fake_fal.records("submit")] == [429, 429, 200]
    assert len(fake_fal.jobs) == 1 and fake_fal.jobs[0].request_id == handle.request_id


def test_ingress_errors_are_retried_app_errors_are_not(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    handle = client.submit(APP, OK)
    fake_fal.fail_next("status", 503, ingress=True)
    assert handle.get(interval=0.01)["video"]
    first = fake_fal.status_calls(handle.request_id)[0]
    assert (first.status, first.fault) == (503, "ingress")

    assert [r.route for r in fake_fal.requests][-1] == "result"

    handle = client.submit(APP, OK)
    fake_fal.fail_next("status", 503)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.get(interval=0.01)
    assert err.value.status_code == 503
    assert err.value.error_type == "runner_scheduling_failure"
    assert "x-fal-request-id" in err.value.response_headers


def test_dropped_connection_is_retried_and_can_duplicate_a_job(
    fake_fal: FakeFal, client: fal_client.SyncClient
) -> None:
    fake_fal.drop_next("submit")
    client.submit(APP, OK)
    assert [r.status for r in fake_fal.records("submit")] == [None, 200]
    assert len(fake_fal.submits) == 1

    fake_fal.reset_counters()
    fake_fal.drop_next("submit", after_processing=True)
    client.submit(APP, OK)
    assert fake_fal.count("submit") == 2
    assert len(fake_fal.submits) == 3  # the lost response still created (and would bill) a job
    assert fake_fal.accepted_count() == 3
    dropped, answered = fake_fal.records("submit")
    assert (dropped.fault, dropped.processed, dropped.status) == ("drop", True, None)
    assert dropped.request_id == fake_fal.jobs[1].request_id  # the job nobody will ever poll
    assert (answered.status, answered.request_id) == (200, fake_fal.jobs[2].request_id)


# --------------------------------------------------------------------------- accept, then error


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_app_layer_error_after_processing_hides_an_accepted_job(
    fake_fal: FakeFal, client: fal_client.SyncClient, status: int
) -> None:
    fake_fal.fail_next("submit", status, after_processing=True)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit(APP, OK)
    assert err.value.status_code == status  # not retried: the app layer answered (x-fal-request-id)
    assert "x-fal-request-id" in err.value.response_headers
    assert err.value.error_type is not None
    assert fake_fal.count("submit") == 1
    assert fake_fal.accepted_count() == 1  # ... yet fal took the job: it runs and would be billed
    record = fake_fal.records("submit")[0]
    assert (record.status, record.fault, record.processed) == (status, "fail", True)
    job = fake_fal.jobs[0]
    assert record.request_id == job.request_id != err.value.response_headers["x-fal-request-id"]
    result = fal_client.sync_client.get_handle(APP, job.request_id).get(interval=0.01)
    assert result["video"]["file_size"] > 0


@pytest.mark.parametrize("status", [502, 503, 504])
def test_ingress_error_after_processing_is_retried_into_a_duplicate(
    fake_fal: FakeFal, client: fal_client.SyncClient, status: int
) -> None:
    fake_fal.fail_next("submit", status, ingress=True, after_processing=True)
    handle = client.submit(APP, OK)
    assert [(r.status, r.fault) for r in fake_fal.records("submit")] == [(status, "ingress"), (200, None)]
    assert fake_fal.accepted_count() == 2
    assert [j.request_id for j in fake_fal.jobs][1] == handle.request_id  # the client knows only the second


def test_a_409_after_processing_is_retried_by_fal_client_into_a_duplicate(
    fake_fal: FakeFal, client: fal_client.SyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    fake_fal.fail_next("submit", 409, after_processing=True)  # a conflict reported for a job fal did take
    handle = client.submit(APP, OK)
    assert [(r.status, r.processed) for r in fake_fal.records("submit")] == [(409, True), (200, True)]
    assert fake_fal.accepted_count() == 2  # fal_client's own retry of 408/409/429 paid twice
    assert fake_fal.jobs[1].request_id == handle.request_id


def test_echo_key_puts_the_credentials_in_every_error_text(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    echo = f"(for key {fake_fal.key}; key id {fake_fal.key.partition(':')[0]})"
    fake_fal.echo_key = True
    fake_fal.fail_jobs_matching("elephant", error="model crashed", status=422)
    fake_fal.fail_next("status", 503)
    handle = client.submit(APP, OK)
    with pytest.raises(fal_client.FalClientHTTPError) as five_hundred:
        handle.status()
    assert five_hundred.value.message == f"Service Temporarily Unavailable {echo}"
    while not isinstance(status := handle.status(), fal_client.Completed):
        time.sleep(0.01)
    assert status.error == f"model crashed {echo}"
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        handle.get()
    details: Any = refused.value.message  # a 422's detail is a list, whatever fal_client's type says
    assert refused.value.status_code == 422 and details[0]["msg"] == f"model crashed {echo}"


def test_accepted_then_failed_submit_is_still_validated(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.fail_next("submit", 500, after_processing=True)
    with pytest.raises(fal_client.FalClientHTTPError):
        client.submit(APP, {"prompt": "a", "duration": "20"})
    (job,) = fake_fal.jobs
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.get_handle(APP, job.request_id).get(interval=0.01)
    assert err.value.status_code == 422
    assert fake_fal.job(job.request_id).error_type == "validation_error"


def test_error_after_processing_a_cancel_still_cancels(
    manual_fal: FakeFal, manual_client: fal_client.SyncClient
) -> None:
    handle = manual_client.submit(APP, OK)
    manual_fal.fail_next("cancel", 503, after_processing=True)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.cancel()
    assert err.value.status_code == 503
    assert manual_fal.job(handle.request_id).cancelled
    assert isinstance(handle.status(), fal_client.Completed)


def test_4xx_and_429_are_never_after_processing(
    fake_fal: FakeFal, client: fal_client.SyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for status in (429, 400, 404, 408, 422):
        with pytest.raises(ValueError, match="not accepted"):
            fake_fal.fail_next("submit", status, after_processing=True)
    fast_retries(monkeypatch)
    fake_fal.fail_next("submit", 429, count=9)  # fal_client makes 10 attempts in all
    handle = client.submit(APP, OK)
    records = fake_fal.records("submit")
    assert [(r.status, r.processed) for r in records] == [(429, False)] * 9 + [(200, True)]
    assert fake_fal.accepted_count() == 1 and fake_fal.jobs[0].request_id == handle.request_id

    fake_fal.fail_next("submit", 429, count=10)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit(APP, OK)
    assert err.value.status_code == 429
    assert fake_fal.count("submit") == 20 and fake_fal.accepted_count() == 1


def test_accepted_count(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    assert fake_fal.accepted_count() == 0
    bad = fal_client.SyncClient(key="fake-key-id:wrong")
    try:
        with pytest.raises(fal_client.FalClientHTTPError):
            bad.submit(APP, OK)
    finally:
        bad._client.close()
    with pytest.raises(fal_client.FalClientHTTPError):
        client.submit("fal-ai/kling-video/o3/4k/no-such-thing", OK)
    fake_fal.fail_next("submit", 503)  # app layer, before processing: refused
    with pytest.raises(fal_client.FalClientHTTPError):
        client.submit(APP, OK)
    assert fake_fal.accepted_count() == 0

    client.submit(APP, {"prompt": "x" * 3000})  # invalid, but accepted: it fails later, in the runner
    client.run(APP, OK)
    fake_fal.reset_counters()
    assert (fake_fal.accepted_count(), fake_fal.accepted_count(via="queue"), fake_fal.accepted_count(via="run")) == (
        2,
        1,
        1,
    )


# --------------------------------------------------------------------------- slow answers


def _wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def test_delayed_submit_answer_opens_a_kill_window(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.delay_next("submit", 0.8)
    handles: list[Any] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: handles.append(client.submit(APP, OK)))
    thread.start()
    _wait_until(lambda: fake_fal.accepted_count() == 1)
    assert not handles  # fal has the job; the client does not know its id yet
    job = fake_fal.jobs[0]
    other = fal_client.SyncClient(key=fake_fal.key)
    try:
        polled = time.monotonic()
        assert isinstance(other.status(APP, job.request_id), fal_client.Status)  # the server is not blocked
        assert time.monotonic() - polled < 0.5
    finally:
        other._client.close()
    thread.join(timeout=10)
    assert time.monotonic() - started >= 0.8
    assert [h.request_id for h in handles] == [job.request_id]
    record = fake_fal.records("submit")[0]
    assert (record.fault, record.processed, record.status) == ("delay", True, 200)


def test_delay_before_processing_creates_the_job_late(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.delay_next("submit", 0.4, after_processing=False)
    thread = threading.Thread(target=client.submit, args=(APP, OK))
    thread.start()
    time.sleep(0.2)
    assert fake_fal.count("submit") == 1 and fake_fal.accepted_count() == 0
    thread.join(timeout=10)
    assert fake_fal.accepted_count() == 1


def test_slow_submit_read_timeout_is_retried_into_a_duplicate(fake_fal: FakeFal) -> None:
    impatient = fal_client.SyncClient(key=fake_fal.key, default_timeout=0.3)
    try:
        fake_fal.delay_next("submit", 0.6)
        handle = impatient.submit(APP, OK)  # attempt 1 times out (httpx.ReadTimeout), attempt 2 is answered
        assert fake_fal.count("submit") == 2
        assert fake_fal.accepted_count() == 2  # two paid jobs, the client knows one
        assert fake_fal.jobs[1].request_id == handle.request_id

        fake_fal.delay_next("submit", 0.6)
        with pytest.raises(httpx.ReadTimeout):
            impatient.submit(APP, OK, start_timeout=30)  # X-Fal-Request-Timeout: timeouts are not retried
        assert fake_fal.count("submit") == 3
        assert fake_fal.accepted_count() == 3  # accepted, and its id is lost
    finally:
        impatient._client.close()


def test_delay_then_504_after_processing(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.delay_next("submit", 0.2)
    fake_fal.fail_next("submit", 504, after_processing=True)
    started = time.monotonic()
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit(APP, OK)
    assert time.monotonic() - started >= 0.2
    assert err.value.status_code == 504 and err.value.error_type == "request_timeout"
    assert fake_fal.records("submit")[0].fault == "delay+fail"
    assert fake_fal.accepted_count() == 1


def test_a_delayed_answer_ends_promptly_when_the_server_stops() -> None:
    server = FakeFal(video_mode="stub").start()
    outcome: list[BaseException | httpx.Response] = []

    def post() -> None:
        try:
            outcome.append(
                httpx.post(f"{server.url}/{APP}", json=OK, headers={"Authorization": f"Key {server.key}"}, timeout=10)
            )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    try:
        server.delay_next("submit", 30.0)
        thread = threading.Thread(target=post)
        thread.start()
        _wait_until(lambda: server.accepted_count() == 1)
    finally:
        stopping = time.monotonic()
        server.stop()
    assert time.monotonic() - stopping < 2.0
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)  # closed, never answered
    assert server.internal_errors == []


# --------------------------------------------------------------------------- status and result storms


def test_app_layer_500_storm_on_status_is_not_retried(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    handle = client.submit(APP, OK)
    fake_fal.fail_next("status", 500, count=8)
    for _ in range(8):
        with pytest.raises(fal_client.FalClientHTTPError) as err:
            handle.get(interval=0.01)
        assert (err.value.status_code, err.value.error_type) == (500, "internal_error")
    assert fake_fal.count("status") == 8  # one request per call: fal_client never retries a 500
    assert fake_fal.count("result") == 0
    assert handle.get(interval=0.01)["video"]


def test_app_layer_500_storm_on_result_is_not_retried(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    handle = client.submit(APP, OK)
    _wait_until(lambda: fake_fal.job(handle.request_id).status == "COMPLETED")
    fake_fal.fail_next("result", 500, count=8)
    for _ in range(8):
        with pytest.raises(fal_client.FalClientHTTPError) as err:
            client.result(APP, handle.request_id)
        assert err.value.status_code == 500
    assert [r.status for r in fake_fal.records("result")] == [500] * 8
    assert fake_fal.count("status") == 8  # result() polls status once (COMPLETED) before each GET
    assert client.result(APP, handle.request_id)["video"]


def test_404_on_status_or_result_looks_like_an_unknown_request(
    fake_fal: FakeFal, client: fal_client.SyncClient
) -> None:
    handle = client.submit(APP, OK)
    with pytest.raises(fal_client.FalClientHTTPError) as unknown:
        client.status(APP, str(uuid.uuid4()))
    fake_fal.fail_next("status", 404)
    with pytest.raises(fal_client.FalClientHTTPError) as faked:
        handle.status()
    assert faked.value.status_code == unknown.value.status_code == 404
    assert faked.value.message == unknown.value.message == "Request not found"
    assert "x-fal-request-id" not in faked.value.response_headers
    real, fake = fake_fal.records("status")
    assert (real.response_json, real.fault) == (fake.response_json, None)
    assert fake.fault == "fail"

    fake_fal.fail_next("result", 404)
    with pytest.raises(fal_client.FalClientHTTPError) as gone:
        handle.get(interval=0.01)
    assert (gone.value.status_code, gone.value.message) == (404, "Request not found")
    assert handle.get(interval=0.01)["video"]  # it was only the answer


def test_429_storm_on_status_and_result_is_retried(
    fake_fal: FakeFal, client: fal_client.SyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    handle = client.submit(APP, OK)
    fake_fal.fail_next("status", 429, count=5)
    fake_fal.fail_next("result", 429, count=9)
    assert handle.get(interval=0.01)["video"]
    assert [r.status for r in fake_fal.records("result")] == [429] * 9 + [200]


# --------------------------------------------------------------------------- unknown status words


def test_unknown_status_word_raises_value_error(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    first = client.submit(APP, OK)
    second = client.submit(APP, OK)
    fake_fal.report_status_next("CANCELLED", count=2, request_id=second.request_id)
    assert isinstance(first.status(), fal_client.Status)  # another request id: untouched
    with pytest.raises(ValueError, match="Unknown status: CANCELLED"):
        second.status()
    with pytest.raises(ValueError, match="Unknown status: CANCELLED"):
        second.get(interval=0.01)  # not retried either
    calls = fake_fal.status_calls(second.request_id)
    assert [(r.status, r.fault) for r in calls] == [(200, "status_word")] * 2
    assert calls[0].response_json["status"] == "CANCELLED"
    assert second.get(interval=0.01)["video"]

    fake_fal.report_status_next("FAILED")  # any request id
    with pytest.raises(ValueError, match="Unknown status: FAILED"):
        first.status()
    assert isinstance(first.status(), fal_client.Status)


# --------------------------------------------------------------------------- fal never got it


def test_closed_port_refuses_and_fal_client_retries_the_connect(
    fake_fal: FakeFal, client: fal_client.SyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fake_fal.closed_port_url()
    assert url.startswith("http://127.0.0.1:") and url != fake_fal.url
    fast_retries(monkeypatch)
    delays: list[int] = []
    real_delay = fc._get_retry_delay

    def counted_delay(n: int, *a: Any, **k: Any) -> float:
        delays.append(n)
        return real_delay(n, *a, **k)

    monkeypatch.setattr(fc, "_get_retry_delay", counted_delay)
    monkeypatch.setattr(fc, "QUEUE_URL_FORMAT", url + "/")
    with pytest.raises(httpx.ConnectError):
        client.submit(APP, OK)
    assert delays == list(range(1, 10))  # 10 attempts in all
    assert fake_fal.requests == [] and fake_fal.accepted_count() == 0


def test_wrong_key_is_401(fake_fal: FakeFal) -> None:
    bad = fal_client.SyncClient(key="fake-key-id:wrong")
    try:
        with pytest.raises(fal_client.FalClientHTTPError) as err:
            bad.submit(APP, OK)
    finally:
        bad._client.close()
    assert err.value.status_code == 401
    assert isinstance(err.value.message, str) and err.value.message
    assert fake_fal.jobs == []
    assert fake_fal.records("submit")[0].headers["authorization"] == "Key fake-key-id:wrong"


def test_unknown_endpoint_is_404(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit("fal-ai/kling-video/o3/4k/no-such-thing", OK)
    assert err.value.status_code == 404
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.status(APP, str(uuid.uuid4()))
    assert err.value.status_code == 404


# --------------------------------------------------------------------------- model errors


def _elements(n: int) -> list[dict[str, Any]]:
    return [
        {"frontal_image_url": f"https://example.org/{i}.png", "reference_image_urls": ["https://example.org/r.png"]}
        for i in range(n)
    ]


INVALID: dict[str, tuple[Any, list[Any], str]] = {
    "prompt-and-multi-prompt": (
        {"prompt": "a", "multi_prompt": [{"prompt": "b", "duration": "3"}], "duration": "3"},
        ["body", "root"],
        "value_error",
    ),
    "eight-references": (
        {"prompt": "a", "elements": _elements(4), "image_urls": [f"https://example.org/s{i}.png" for i in range(4)]},
        ["body"],
        "value_error",
    ),
    "relative-path": ({"prompt": "a", "image_urls": ["refs/a.png"]}, ["body", "image_urls", 0], "url_parsing"),
    "duration-out-of-enum": ({"prompt": "a", "duration": "20"}, ["body", "duration"], "type_error.enum"),
    "extra-field": ({"prompt": "a", "seed": 3}, ["body", "seed"], "value_error.extra"),
    "prompt-too-long": ({"prompt": "x" * 2501}, ["body", "prompt"], "value_error.any_str.max_length"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_payload_fails_after_the_queue_with_422(
    fake_fal: FakeFal, client: fal_client.SyncClient, case: str
) -> None:
    payload, loc, type_ = INVALID[case]
    handle = client.submit(APP, payload)  # accepted: validation happens in the runner
    final = list(handle.iter_events(interval=0.01))[-1]
    assert isinstance(final, fal_client.Completed)
    assert final.error and final.error_type == "validation_error"
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.get(interval=0.01)
    assert err.value.status_code == 422
    detail = err.value.message
    assert isinstance(detail, list)
    assert (loc, type_) in [(d["loc"], d["type"]) for d in detail], detail
    assert all(d["msg"] for d in detail)


def test_two_video_elements_are_accepted_with_a_warning(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    """fal's type text says "only one element with a video"; its page's multi-shot example sends two.

    The fake takes the page's example (a warning in the job's logs), as storyc compiles it.
    """
    payload = json.loads(
        (Path(__file__).parent / "cases" / "seed" / "multi-shot-with-references.json").read_text("utf-8")
    )
    assert [e for e in payload["elements"] if "video_url" in e] == payload["elements"] and len(payload["elements"]) == 2
    handle = client.submit(APP, payload)
    assert handle.get(interval=0.01)["video"]["file_size"] > 0
    (job,) = fake_fal.jobs
    assert any("only have one element with a video" in w for w in job.warnings), job.warnings


def test_own_file_urls_must_exist_and_be_images(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    good = client.upload(png_bytes(), "image/png", "ellie.png")
    text = client.upload(b"not an image", "image/png", "fake.png")
    missing = good.replace(good.split("/")[-2], uuid.uuid4().hex)
    handle = client.submit(
        APP,
        {
            "prompt": "a",
            "elements": [{"frontal_image_url": good, "reference_image_urls": [missing]}],
            "image_urls": [text],
        },
    )
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.get(interval=0.01)
    found = {(tuple(d["loc"]), d["type"]) for d in _details(err.value)}
    assert found == {
        (("body", "elements", 0, "reference_image_urls", 0), "file_download_error"),
        (("body", "image_urls", 0), "image_load_error"),
    }

    ok = client.submit(APP, {"prompt": "a", "elements": [{"frontal_image_url": good, "reference_image_urls": [good]}]})
    assert ok.get(interval=0.01)["video"]["file_size"] > 0


def test_fail_jobs_matching(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.fail_jobs_matching("explode", error="Runner disconnected", error_type="runner_disconnected", status=503)
    fake_fal.fail_jobs_matching(
        "nsfw", error="Content policy violation", error_type="content_policy_violation", status=422
    )

    handle = client.submit(APP, {"prompt": "the ball will explode"})
    final = list(handle.iter_events(interval=0.01))[-1]
    assert isinstance(final, fal_client.Completed)
    assert final == fal_client.Completed(
        logs=None, metrics=final.metrics, error="Runner disconnected", error_type="runner_disconnected"
    )
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.get(interval=0.01)
    assert (err.value.status_code, err.value.error_type, err.value.message) == (
        503,
        "runner_disconnected",
        "Runner disconnected",
    )

    shots = {"multi_prompt": [{"prompt": "calm", "duration": "3"}, {"prompt": "nsfw here", "duration": "2"}]}
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit(APP, shots).get(interval=0.01)
    assert err.value.status_code == 422
    assert _details(err.value)[0]["loc"] == ["body", "multi_prompt", 1, "prompt"]
    assert _details(err.value)[0]["type"] == "content_policy_violation"

    assert client.submit(APP, OK).get(interval=0.01)["video"]


def test_start_timeout_gives_504_user_timeout(
    manual_fal: FakeFal, manual_client: fal_client.SyncClient, clock: ManualClock
) -> None:
    manual_fal.concurrency = 1
    manual_client.submit(APP, OK)
    waiting = manual_client.submit(APP, OK, start_timeout=5)
    clock.advance(6)
    final = waiting.status()
    assert isinstance(final, fal_client.Completed) and final.error_type == "request_timeout"
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        waiting.get()
    assert err.value.status_code == 504
    assert err.value.response_headers["x-fal-request-timeout-type"] == "user"


# --------------------------------------------------------------------------- expiry and cancel


def test_result_expiry(manual_fal: FakeFal, manual_client: fal_client.SyncClient, clock: ManualClock) -> None:
    manual_fal.result_ttl = 60.0
    handle = manual_client.submit(APP, OK)
    clock.advance(10.0)
    assert manual_client.result(APP, handle.request_id)["video"]
    clock.advance(59.0)
    assert handle.get()["video"]
    clock.advance(1.0)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.get()
    assert err.value.status_code == 404
    assert isinstance(handle.status(), fal_client.Completed)  # the request itself is still known

    other = manual_client.submit(APP, OK)
    clock.advance(10.0)
    manual_fal.expire(other.request_id)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        other.get()
    assert err.value.status_code == 404


def test_cancel(manual_fal: FakeFal, manual_client: fal_client.SyncClient, clock: ManualClock) -> None:
    manual_fal.concurrency = 1
    running = manual_client.submit(APP, OK)
    queued = manual_client.submit(APP, OK)
    last = manual_client.submit(APP, OK)
    assert last.status() == fal_client.Queued(position=1)

    queued.cancel()
    assert manual_fal.records("cancel")[-1].status == 202
    assert manual_fal.records("cancel")[-1].response_json == {"status": "CANCELLATION_REQUESTED"}
    assert last.status() == fal_client.Queued(position=0)
    cancelled = queued.status()
    assert isinstance(cancelled, fal_client.Completed) and cancelled.error_type == "client_cancelled"

    clock.advance(10.0)
    assert isinstance(running.status(), fal_client.Completed)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        running.cancel()
    assert err.value.status_code == 400
    assert manual_fal.records("cancel")[-1].response_json == {"status": "ALREADY_COMPLETED"}

    third = last.status()
    assert third == fal_client.InProgress(logs=None)
    last.cancel()  # a running job: the app honours the signal by default
    stopped = last.status()
    assert isinstance(stopped, fal_client.Completed) and stopped.error_type == "client_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        last.get()
    assert err.value.status_code == 499

    manual_fal.honour_cancel = False
    stubborn = manual_client.submit(APP, OK)
    stubborn.cancel()
    assert stubborn.status() == fal_client.InProgress(logs=None)
    clock.advance(10.0)
    assert stubborn.get()["video"]
    assert manual_fal.job(stubborn.request_id).cancelled

    with pytest.raises(fal_client.FalClientHTTPError) as err:
        manual_client.cancel(APP, str(uuid.uuid4()))
    assert err.value.status_code == 404
    assert manual_fal.records("cancel")[-1].response_json == {"status": "NOT_FOUND"}


# --------------------------------------------------------------------------- storage


def test_upload_and_download(fake_fal: FakeFal, client: fal_client.SyncClient, tmp_path: Path) -> None:
    data = png_bytes()
    url = client.upload(data, "image/png", "ellie-front.png")
    assert url.startswith(fake_fal.url + "/files/") and url.endswith("/ellie-front.png")
    response = httpx.get(url, timeout=10)
    assert response.content == data
    assert int(response.headers["content-length"]) == len(data)
    assert response.headers["content-type"] == "image/png"

    path = tmp_path / "dawn.jpg"
    path.write_bytes(b"\xff\xd8\xff-not-really-a-jpeg")
    url2 = client.upload_file(path)
    assert httpx.get(url2, timeout=10).content == path.read_bytes()

    import hashlib

    assert [(u.file_name, u.content_type, u.size, u.sha256, u.via) for u in fake_fal.uploads] == [
        ("ellie-front.png", "image/png", len(data), hashlib.sha256(data).hexdigest(), "cdn"),
        ("dawn.jpg", "image/jpeg", path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest(), "cdn"),
    ]
    token = fake_fal.records("token")
    assert len(token) == 1 and token[0].query == {"storage_type": "fal-cdn-v3"}  # cached for the client
    assert fake_fal.records("upload")[0].headers["authorization"].startswith("Bearer ")


def test_upload_falls_back_to_storage_and_token_failure_aborts(
    fake_fal: FakeFal, client: fal_client.SyncClient
) -> None:
    fake_fal.fail_next("upload", 500)
    url = client.upload(b"fallback bytes", "text/plain", "notes.txt")
    assert httpx.get(url, timeout=10).content == b"fallback bytes"
    assert [u.via for u in fake_fal.uploads] == ["gcs"]
    initiate = fake_fal.records("upload_initiate")[0]
    assert initiate.json == {"file_name": "notes.txt", "content_type": "text/plain"}

    fresh = fal_client.SyncClient(key=fake_fal.key)
    fake_fal.fail_next("token", 503)
    try:
        with pytest.raises(httpx.HTTPStatusError):
            fresh.upload(b"x", "text/plain")
    finally:
        if "_client" in fresh.__dict__:
            fresh._client.close()
    assert len(fake_fal.uploads) == 1


def test_multipart_upload(fake_fal: FakeFal, client: fal_client.SyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fc, "MULTIPART_THRESHOLD", 1000)
    monkeypatch.setattr(fc, "MULTIPART_CHUNK_SIZE", 400)
    data = bytes(range(256)) * 10
    url = client.upload(data, "application/octet-stream", "big.bin")
    assert httpx.get(url, timeout=10).content == data
    assert fake_fal.count("upload_part") == 7
    assert fake_fal.uploads[0].via == "multipart" and fake_fal.uploads[0].size == len(data)


def test_truncated_download_is_detectable(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    video = client.submit(APP, OK).get(interval=0.01)["video"]
    fake_fal.truncate_next_downloads()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(video["url"], timeout=10)
    record = fake_fal.records("download")[-1]
    assert record.status == 200
    full = httpx.get(video["url"], timeout=10)
    assert len(full.content) == video["file_size"]
    ranged = httpx.get(video["url"], headers={"Range": "bytes=0-9"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == full.content[:10]


def test_fault_routes_are_checked(fake_fal: FakeFal) -> None:
    with pytest.raises(ValueError, match="unknown route"):
        fake_fal.fail_next("sumbit", 500)


def test_ingress_and_app_fault_bodies(fake_fal: FakeFal) -> None:
    fake_fal.fail_next("download", 502, ingress=True)
    fake_fal.fail_next("download", 502)
    url = fake_fal.put_file(b"abc", "a.txt", "text/plain")
    ingress = httpx.get(url, timeout=10)
    app = httpx.get(url, timeout=10)
    assert ingress.status_code == 502 and "nginx" in ingress.text and "x-fal-request-id" not in ingress.headers
    assert app.status_code == 502 and "x-fal-request-id" in app.headers
    assert app.json() == {"detail": "Bad Gateway", "error_type": "runner_incomplete_response"}
    assert httpx.get(url, timeout=10).content == b"abc"


def test_latency_files_and_head(fake_fal: FakeFal) -> None:
    import time

    url = fake_fal.put_file(b"0123456789", "digits.txt", "text/plain")
    fake_fal.latency = 0.2
    started = time.monotonic()
    head = httpx.head(url, timeout=10)
    assert time.monotonic() - started >= 0.2
    assert head.status_code == 200 and head.headers["content-length"] == "10" and head.content == b""
    fake_fal.latency = 0.0
    assert fake_fal.file_bytes(url) == b"0123456789"
    assert fake_fal.uploads == []  # put_file is not an upload
    fake_fal.expire_file(url)
    assert httpx.get(url, timeout=10).status_code == 404
    assert fake_fal.file_bytes(url + "x") is None


# --------------------------------------------------------------------------- TLS, from a subprocess


def test_tls_subprocess_uses_fal_client_environment(fake_fal_tls: FakeFal) -> None:
    env = fake_fal_tls.subprocess_env()
    assert set(env) == {"FAL_KEY", "FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "SSL_CERT_FILE"}
    code = textwrap.dedent(
        f"""
        import json, fal_client
        handle = fal_client.submit({APP!r}, {OK!r})
        result = handle.get(interval=0.01)
        print(json.dumps({{"id": handle.request_id, "status_url": handle.status_url, "result": result}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status_url"].startswith(f"https://127.0.0.1:{fake_fal_tls.port}/fal-ai/kling-video/requests/")
    assert out["result"]["video"]["file_size"] > 0
    assert [j.request_id for j in fake_fal_tls.jobs] == [out["id"]]
    assert fake_fal_tls.records("submit")[0].headers["authorization"] == f"Key {fake_fal_tls.key}"

    with httpx.Client(verify=fake_fal_tls.client_ssl_context()) as http:
        assert len(http.get(out["result"]["video"]["url"]).content) == out["result"]["video"]["file_size"]


def _details(error: fal_client.FalClientHTTPError) -> list[dict[str, Any]]:
    """A 422's `detail` list (fal_client types `message` as a string; for 422s it is fal's list)."""
    details: Any = error.message
    assert isinstance(details, list)
    return details


# --------------------------------------------------------------------------- image endpoints (stills)

EDIT = "fal-ai/nano-banana-2/edit"
TEXT_TO_IMAGE = "fal-ai/nano-banana-2"
STILL = {"prompt": "a young grey elephant at the edge of a clearing", "aspect_ratio": "16:9"}


def _image(data: bytes) -> Any:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _mean_colour(data: bytes) -> tuple[float, ...]:
    from PIL import ImageStat

    return tuple(ImageStat.Stat(_image(data).convert("RGB")).mean)


def test_image_edit_round_trip_gives_one_png_per_candidate(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    reference = client.upload(png_bytes(), "image/png", "ellie.png")
    request = {**STILL, "image_urls": [reference], "num_images": 3}
    handle = client.submit(EDIT, request)
    base = f"{fake_fal.url}/fal-ai/nano-banana-2/requests/{handle.request_id}"
    assert (handle.status_url, handle.response_url) == (base + "/status", base)
    assert isinstance(fake_fal.records("submit")[0].response_json["queue_position"], int)
    final = list(handle.iter_events(with_logs=True, interval=0.01))[-1]
    assert isinstance(final, fal_client.Completed) and final.error is None
    assert any(f"Starting {EDIT}" in log["message"] for log in final.logs or [])

    result = handle.get(interval=0.01)
    assert set(result) == {"images", "description"} and result["description"] == ""
    images = result["images"]
    assert len(images) == 3
    downloads = []
    for i, meta in enumerate(images):
        assert set(meta) == {"url", "content_type", "file_name", "file_size", "width", "height"}
        assert meta["content_type"] == "image/png" and meta["file_name"] == f"output_{i}.png"
        data = httpx.get(meta["url"], timeout=10).content
        assert len(data) == meta["file_size"] > 0
        image = _image(data)
        assert image.format == "PNG"
        assert image.size == (meta["width"], meta["height"])
        assert meta["width"] * 9 == meta["height"] * 16  # the aspect ratio asked, exactly
        downloads.append(data)
    colours = [_mean_colour(d) for d in downloads]
    for a in range(3):
        for b in range(a + 1, 3):  # each candidate visibly different: mean colours far apart
            assert sum(abs(x - y) for x, y in zip(colours[a], colours[b], strict=True)) > 60, colours
    assert fake_fal.job(handle.request_id).image_urls == tuple(m["url"] for m in images)
    assert fake_fal.job(handle.request_id).video_url is None

    again = client.submit(EDIT, request).get(interval=0.01)["images"]  # the same request draws the same images
    assert [httpx.get(m["url"], timeout=10).content for m in again] == downloads
    other = client.submit(EDIT, {**request, "prompt": "another still"}).get(interval=0.01)["images"]
    assert httpx.get(other[0]["url"], timeout=10).content != downloads[0]


@pytest.mark.parametrize(
    ("aspect_ratio", "output_format", "pillow_format"),
    [("9:16", "png", "PNG"), ("21:9", "jpeg", "JPEG"), ("1:8", "webp", "WEBP"), ("auto", "png", "PNG")],
)
def test_text_to_image_honours_aspect_ratio_and_format(
    fake_fal: FakeFal, client: fal_client.SyncClient, aspect_ratio: str, output_format: str, pillow_format: str
) -> None:
    request = {"prompt": "turnaround sheet", "aspect_ratio": aspect_ratio, "output_format": output_format}
    (meta,) = client.submit(TEXT_TO_IMAGE, request).get(interval=0.01)["images"]
    assert meta["content_type"] == f"image/{output_format}"
    image = _image(httpx.get(meta["url"], timeout=10).content)
    assert image.format == pillow_format
    assert image.size == (meta["width"], meta["height"])
    across, down = (1, 1) if aspect_ratio == "auto" else (int(p) for p in aspect_ratio.split(":"))
    assert meta["width"] * down == meta["height"] * across
    assert min(image.size) >= 300  # a still can go on as a Kling start frame (300 px minimum side)


def test_image_jobs_queue_with_video_jobs(
    manual_fal: FakeFal, manual_client: fal_client.SyncClient, clock: ManualClock
) -> None:
    manual_fal.concurrency = 1
    video = manual_client.submit(APP, OK)
    still = manual_client.submit(TEXT_TO_IMAGE, {"prompt": "a clearing"})
    assert manual_fal.records("submit")[-1].response_json["queue_position"] == 0
    assert still.status() == fal_client.Queued(position=0)
    assert manual_client.status(TEXT_TO_IMAGE, still.request_id) == fal_client.Queued(position=0)  # by id
    clock.advance(10.0)
    assert isinstance(video.status(), fal_client.Completed)
    assert still.status() == fal_client.InProgress(logs=None)
    clock.advance(10.0)
    assert len(manual_client.result(TEXT_TO_IMAGE, still.request_id)["images"]) == 1

    queued = manual_client.submit(EDIT, {"prompt": "x", "image_urls": ["https://example.org/a.png"]})
    manual_client.submit(APP, OK)
    queued.cancel()
    cancelled = queued.status()
    assert isinstance(cancelled, fal_client.Completed) and cancelled.error_type == "client_cancelled"


INVALID_IMAGE: dict[str, tuple[str, Any, list[Any], str]] = {
    "edit-without-image-urls": (EDIT, {"prompt": "a"}, ["body", "image_urls"], "value_error.missing"),
    "text-to-image-with-image-urls": (
        TEXT_TO_IMAGE,
        {"prompt": "a", "image_urls": ["https://example.org/a.png"]},
        ["body", "image_urls"],
        "value_error.extra",
    ),
    "no-prompt": (TEXT_TO_IMAGE, {"num_images": 1}, ["body", "prompt"], "value_error.missing"),
    "prompt-not-a-string": (TEXT_TO_IMAGE, {"prompt": 3}, ["body", "prompt"], "type_error.str"),
    "five-images": (
        TEXT_TO_IMAGE,
        {"prompt": "a", "num_images": 5},
        ["body", "num_images"],
        "value_error.number.not_le",
    ),
    "zero-images": (
        TEXT_TO_IMAGE,
        {"prompt": "a", "num_images": 0},
        ["body", "num_images"],
        "value_error.number.not_ge",
    ),
    "aspect-out-of-enum": (
        TEXT_TO_IMAGE,
        {"prompt": "a", "aspect_ratio": "7:5"},
        ["body", "aspect_ratio"],
        "type_error.enum",
    ),
    "format-out-of-enum": (
        TEXT_TO_IMAGE,
        {"prompt": "a", "output_format": "gif"},
        ["body", "output_format"],
        "type_error.enum",
    ),
    "resolution-out-of-enum": (
        TEXT_TO_IMAGE,
        {"prompt": "a", "resolution": "8K"},
        ["body", "resolution"],
        "type_error.enum",
    ),
    "seed-not-an-integer": (TEXT_TO_IMAGE, {"prompt": "a", "seed": "7"}, ["body", "seed"], "type_error.integer"),
    "unknown-field": (TEXT_TO_IMAGE, {"prompt": "a", "duration": "5"}, ["body", "duration"], "value_error.extra"),
    "relative-image-url": (
        EDIT,
        {"prompt": "a", "image_urls": ["refs/a.png"]},
        ["body", "image_urls", 0],
        "url_parsing",
    ),
}


@pytest.mark.parametrize("case", INVALID_IMAGE)
def test_invalid_image_payload_fails_after_the_queue_with_422(
    fake_fal: FakeFal, client: fal_client.SyncClient, case: str
) -> None:
    endpoint, payload, loc, type_ = INVALID_IMAGE[case]
    handle = client.submit(endpoint, payload)  # accepted: validation happens in the runner
    final = list(handle.iter_events(interval=0.01))[-1]
    assert isinstance(final, fal_client.Completed) and final.error_type == "validation_error"
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.get(interval=0.01)
    assert err.value.status_code == 422
    detail = _details(err.value)
    assert (loc, type_) in [(d["loc"], d["type"]) for d in detail], detail
    assert all(d["msg"] for d in detail)
    assert fake_fal.accepted_count(endpoint=endpoint) == 1


def test_every_documented_image_setting_is_accepted(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    reference = client.upload(png_bytes(), "image/png", "ellie.png")
    request = {
        "prompt": "a",
        "image_urls": [reference],
        "num_images": 4,
        "seed": 7,
        "aspect_ratio": "4:1",
        "output_format": "png",
        "resolution": "0.5K",
        "safety_tolerance": "2",
        "limit_generations": True,
        "enable_web_search": False,
    }
    assert len(client.submit(EDIT, request).get(interval=0.01)["images"]) == 4


def test_image_input_urls_are_fetched_like_video_references(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    text = client.upload(b"not an image", "image/png", "fake.png")
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit(EDIT, {"prompt": "a", "image_urls": [text]}).get(interval=0.01)
    assert [(d["loc"], d["type"]) for d in _details(err.value)] == [(["body", "image_urls", 0], "image_load_error")]


def test_faults_aimed_at_the_image_endpoint_spare_the_videos(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.fail_next("submit", 503, endpoint=EDIT)
    video = client.submit(APP, OK)  # not aimed at: goes through, the fault stays armed
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit(EDIT, {"prompt": "a", "image_urls": ["https://example.org/a.png"]})
    assert err.value.status_code == 503
    assert fake_fal.accepted_count(endpoint=EDIT) == 0 and fake_fal.accepted_count() == 1

    still = client.submit(TEXT_TO_IMAGE, {"prompt": "a"})
    fake_fal.fail_next("result", 500, endpoint=TEXT_TO_IMAGE)
    assert video.get(interval=0.01)["video"]  # a video's result is not this endpoint's
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        still.get(interval=0.01)
    assert err.value.status_code == 500
    assert still.get(interval=0.01)["images"]

    with pytest.raises(ValueError, match="unknown endpoint"):
        fake_fal.fail_next("submit", 500, endpoint="fal-ai/nano-banana-3")
    with pytest.raises(ValueError, match="not about one endpoint"):
        fake_fal.fail_next("download", 500, endpoint=EDIT)


def test_image_jobs_share_the_faults_and_counts_of_video_jobs(fake_fal: FakeFal, client: fal_client.SyncClient) -> None:
    fake_fal.drop_next("submit", after_processing=True)  # any endpoint: the answer is lost, the job exists
    handle = client.submit(TEXT_TO_IMAGE, {"prompt": "a"})
    assert fake_fal.accepted_count(endpoint=TEXT_TO_IMAGE) == 2  # a duplicate, as for video
    assert fake_fal.jobs[1].request_id == handle.request_id

    fake_fal.fail_jobs_matching(
        "forbidden", error="Content policy violation", error_type="content_policy_violation", status=422
    )
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit(TEXT_TO_IMAGE, {"prompt": "a forbidden still"}).get(interval=0.01)
    assert _details(err.value)[0]["loc"] == ["body", "prompt"]

    fake_fal.report_status_next("FAILED", request_id=handle.request_id)
    with pytest.raises(ValueError, match="Unknown status: FAILED"):
        handle.status()

    (meta,) = handle.get(interval=0.01)["images"]
    fake_fal.truncate_next_downloads()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(meta["url"], timeout=10)

    client.run(EDIT, {"prompt": "a", "image_urls": [meta["url"]]})  # a still made from a still
    assert fake_fal.accepted_count(endpoint=EDIT, via="run") == 1
    assert fake_fal.accepted_count(endpoint=APP) == 0
    assert fake_fal.accepted_count() == 4


def test_endpoint_files_about_image_endpoints_do_not_change_the_fake(tmp_path: Path) -> None:
    from fakefal import load_endpoints
    from fakefal.validation import DEFAULT_SCHEMAS_DIR

    for source in DEFAULT_SCHEMAS_DIR.glob("*.json"):
        (tmp_path / source.name).write_text(source.read_text("utf-8"), "utf-8")
    # storyc's own data file for the endpoint, whatever its shape, is not the fake's model of fal
    (tmp_path / "nano-banana-2-edit.json").write_text(json.dumps({"id": EDIT, "price_usd_per_image": 0.08}), "utf-8")
    endpoints = load_endpoints(tmp_path)
    assert endpoints[EDIT].kind == "image" and "image_urls" in endpoints[EDIT].input_schema["required"]
    assert endpoints[TEXT_TO_IMAGE].kind == "image"
    assert endpoints[APP].kind == "video"
