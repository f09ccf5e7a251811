"""Fidelity tiers: the same request on standard, pro and 4K, priced from each endpoint file."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import fal_client
import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_IMAGES, make_project

from storyc.cli import cli
from storyc.compile import endpoints
from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import Lock, Render, Video, dumps, lock_path

STANDARD = "fal-ai/kling-video/o3/standard/reference-to-video"
PRO = "fal-ai/kling-video/o3/pro/reference-to-video"
FOUR_K = "fal-ai/kling-video/o3/4k/reference-to-video"

BOARD = """
version: 1
title: Tiers
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
  rex:
    frontal: refs/rex-front.png
    references: [refs/rex-side.png]
styles:
  dawn: refs/dawn.png
scenes:
  - id: quiet
    prompt: "@ellie meets @rex in the light of @dawn."
    duration: 5
  - id: loud
    prompt: "@rex roars."
    duration: 10
    generate_audio: true
"""


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path / "film", BOARD, BASIC_IMAGES)
    monkeypatch.chdir(path.parent)
    return path


def test_the_family_is_three_data_files_cheapest_first() -> None:
    assert [e.id for e in endpoints.tiers(FOUR_K)] == [STANDARD, PRO, FOUR_K]
    standard = endpoints.registry()[STANDARD]
    assert standard.cost(10) == Decimal("0.84") and standard.cost(10, audio=True) == Decimal("1.12")
    assert endpoints.registry()[FOUR_K].cost(10, audio=True) == Decimal("4.20")  # flat


def test_plan_compare_prices_every_tier_to_the_cent(board: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--compare", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tiers"] == ["animatic", STANDARD, PRO, FOUR_K]
    prices = {s["scene"]: s["prices"] for s in data["scenes"]}
    assert prices["quiet"] == {"animatic": 0.0, STANDARD: 0.42, PRO: 0.56, FOUR_K: 2.10}  # 5 s, audio off
    assert prices["loud"] == {"animatic": 0.0, STANDARD: 1.12, PRO: 1.40, FOUR_K: 4.20}  # 10 s, audio on
    assert data["totals"] == {"animatic": 0.0, STANDARD: 1.54, PRO: 1.96, FOUR_K: 6.30}
    text = CliRunner().invoke(cli, ["plan", "--compare"], catch_exceptions=False).stdout
    assert "  total" in text and "$1.54" in text and "$6.30" in text


def test_what_the_lock_has_costs_nothing_on_that_tier_only(board: Path) -> None:
    compiled = compile_file(board, use_cache=False).board
    assert compiled is not None
    quiet = next(j for j in compiled.jobs if j.scene == "quiet")
    video = Video(url="https://v3.fal.media/files/x.mp4", bytes=1, sha256="sha256:" + "0" * 64, path="renders/q.mp4")
    done = Render("quiet", FOUR_K, "done", 5, Decimal("2.10"), "req-1", video)
    lock_path(board).write_text(dumps(Lock(renders={quiet.key: done})), "utf-8")
    data = json.loads(CliRunner().invoke(cli, ["plan", "--compare", "--json"], catch_exceptions=False).stdout)
    quiet_prices = next(s for s in data["scenes"] if s["scene"] == "quiet")
    assert quiet_prices["prices"][FOUR_K] == 0.0 and quiet_prices["notes"][FOUR_K] == "done"
    assert quiet_prices["prices"][STANDARD] == 0.42  # a draft is another request: not in the lock


def test_a_tier_whose_limits_refuse_a_request_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board = make_project(
        tmp_path / "film",
        BOARD.replace(
            "styles:\n  dawn: refs/dawn.png",
            "  ball:\n    video: refs/ball.mp4\n"
            "styles:\n  dawn: refs/dawn.png\n  dusk: refs/dusk.png\n  noon: refs/noon.png",
        ).replace("@ellie meets @rex in the light of @dawn.", "@ellie, @rex and @ball in @dawn, @dusk and @noon."),
        {**BASIC_IMAGES, "refs/dusk.png": "purple", "refs/noon.png": "yellow"},
    )
    ball = Path(__file__).parent.parent / "examples/elephant/refs/ball.mp4"
    (board.parent / "refs" / "ball.mp4").write_bytes(ball.read_bytes())
    monkeypatch.chdir(board.parent)
    data = json.loads(CliRunner().invoke(cli, ["plan", "--compare", "--json"], catch_exceptions=False).stdout)
    quiet = next(s for s in data["scenes"] if s["scene"] == "quiet")
    assert quiet["prices"][STANDARD] is None and quiet["prices"][PRO] is None and quiet["prices"][FOUR_K] == 2.10
    assert quiet["notes"][PRO] == "6 references with a video; at most 4"
    assert data["totals"][PRO] is None


def test_the_fake_fal_takes_every_tier_and_refuses_like_pro_would(fake_fal: FakeFal) -> None:
    client = fal_client.SyncClient()
    try:
        _submit_to_every_tier(client, fake_fal)
    finally:
        client._client.close()


def _submit_to_every_tier(client: fal_client.SyncClient, fake_fal: FakeFal) -> None:
    for endpoint in (STANDARD, PRO):
        done = client.submit(endpoint, {"prompt": "a red ball", "duration": "3"}).get(interval=0.01)
        assert done["video"]["url"]
    elements = [{"video_url": fake_fal.put_file(b"v", "v.mp4", "video/mp4")}] + [
        {"frontal_image_url": "https://example.org/a.png", "reference_image_urls": ["https://example.org/b.png"]}
    ] * 2
    payload = {"prompt": "many", "duration": "3", "elements": elements, "image_urls": ["https://example.org/c.png"] * 2}
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        client.submit(PRO, payload).get(interval=0.01)
    assert refused.value.status_code == 422
