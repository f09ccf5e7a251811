"""Rendering a board that is a graph (stills, frames of other scenes) on the fake fal with the real fal_client.

Each step runs once its inputs are done, through the same ledger as scenes (intent before
submit, unknown never re-sent); an upstream's output reaches its downstream as an uploaded
URL (the picked candidate, the frame taken from the scene's video).  Counted accepted jobs
prove nothing is paid twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fakefal import FakeFal
from helpers import fast_fal, make_project
from test_render_fal import render, states

from storyc.lock.lockfile import Lock, lock_path, read

FAST = fast_fal()
TEXT_TO_IMAGE = "fal-ai/nano-banana-2"
EDIT = "fal-ai/nano-banana-2/edit"
VIDEO = "fal-ai/kling-video/o3/standard/reference-to-video"

CHAIN = """
version: 1
title: Chain
target:
  endpoint: fal-ai/kling-video/o3/standard/reference-to-video
  aspect_ratio: "16:9"
stills:
  meet-open:
    prompt: "@ellie at the edge of a clearing, first light"
    variants: 3
    pick: 2
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
scenes:
  - id: meet
    start_frame: {still: meet-open}
    prompt: "@ellie walks into the clearing."
    duration: 3
  - id: play
    start_frame: {last_frame_of: meet}
    prompt: "@ellie plays."
    duration: 3
  - id: rest
    prompt: "@ellie sleeps."
    duration: 3
"""
IMAGES = {"refs/ellie-front.png": "grey", "refs/ellie-side.png": "silver"}


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return make_project(tmp_path / "film", CHAIN, IMAGES)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def submitted_to(fake_fal: FakeFal, endpoint: str) -> list[dict[str, Any]]:
    return [j.payload for j in fake_fal.jobs if j.endpoint_id == endpoint]


def lock(board: Path) -> Lock:
    return read(lock_path(board))


def test_a_chain_renders_in_order_and_each_request_carries_its_upstreams_uploaded_output(
    fake_fal: FakeFal, board: Path
) -> None:
    summary = render(board)
    assert states(summary) == {"still meet-open": "done", "meet": "done", "play": "done", "rest": "done"}
    the_lock = lock(board)
    still = next(r for r in the_lock.renders.values() if r.still == "meet-open")
    assert len(still.images) == 3
    for n, image in enumerate(still.images, 1):
        assert image.path == f"renders/stills/meet-open-{still_key(the_lock)[7:19]}-{n}.png"
        data = (board.parent / image.path).read_bytes()
        assert image.sha256 == sha(data) and data == fake_fal.file_bytes(image.url)
    # meet starts from the picked candidate (the 2nd), uploaded: its bytes are that file's
    (meet_payload,) = [p for p in submitted_to(fake_fal, VIDEO) if p["prompt"].startswith("@Element1 walks")]
    assert still.images[1].path is not None
    picked = (board.parent / still.images[1].path).read_bytes()
    assert fake_fal.file_bytes(meet_payload["start_image_url"]) == picked
    # play starts from meet's last frame, taken from meet's video and uploaded
    (play_payload,) = [p for p in submitted_to(fake_fal, VIDEO) if p["prompt"].startswith("@Element1 plays")]
    meet = next(r for r in the_lock.renders.values() if r.scene == "meet")
    assert meet.video is not None and meet.video.path is not None
    from storyc.media.video import last_frame

    expected = board.parent / "expected-last.png"
    last_frame(board.parent / meet.video.path, expected)
    assert fake_fal.file_bytes(play_payload["start_image_url"]) == expected.read_bytes()
    # each downstream records the output it was made from
    assert meet.made_from == {f"still:{still_key(the_lock)}#2": still.images[1].sha256}
    play = next(r for r in the_lock.renders.values() if r.scene == "play")
    assert play.made_from == {f"last_frame_of:{key_of(the_lock, 'meet')}": meet.video.sha256}
    assert fake_fal.accepted_count() == 4


def still_key(the_lock: Lock, name: str = "meet-open") -> str:
    return next(k for k, r in the_lock.renders.items() if r.still == name)


def key_of(the_lock: Lock, scene: str) -> str:
    return next(k for k, r in the_lock.renders.items() if r.scene == scene)
