"""Endpoints are data: every limit storyc checks comes from `schemas/endpoints/*.json`.

A new endpoint of the family is one data file; the board schema's own bounds are the loosest of
the registered endpoints' (editors see them), and storyc checks each scene against its own.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import BASIC_IMAGES, make_project

from storyc.compile import endpoints
from storyc.compile.pipeline import compile_file
from storyc.resources import schemas_dir, storyboard_schema_path

ENDPOINT_4K = "fal-ai/kling-video/o3/4k/reference-to-video"


def test_the_board_schema_bounds_are_the_loosest_of_the_endpoints() -> None:
    schema = json.loads(storyboard_schema_path().read_text("utf-8"))
    defs = schema["$defs"]
    every = [e.limits for e in endpoints.registry().values()]
    assert defs["Duration"]["minimum"] == min(x.duration_min for x in every)
    assert defs["Duration"]["maximum"] == max(x.duration_max for x in every)
    assert defs["Shot"]["properties"]["duration"]["minimum"] == min(x.shot_duration_min for x in every)
    assert defs["Shot"]["properties"]["duration"]["maximum"] == max(x.shot_duration_max for x in every)
    assert defs["Scene"]["properties"]["shots"]["maxItems"] == max(x.max_shots for x in every)
    references = defs["Character"]["properties"]["references"]
    assert references["minItems"] == min(x.element_reference_images_min for x in every)
    assert references["maxItems"] == max(x.element_reference_images_max for x in every)


@pytest.fixture
def tight_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A registry with one more endpoint of the family, made of data alone: 10 s, 3 shots, $0.10/s."""
    folder = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), folder)
    data = json.loads((folder / "endpoints" / "kling-video-o3-4k-reference-to-video.json").read_text("utf-8"))
    data["id"] = "fal-ai/kling-video/o3/tight/reference-to-video"
    data["price_usd_per_second"] = 0.1
    data["limits"] |= {"duration_max": 10, "max_shots": 3, "shot_duration_max": 5}
    (folder / "endpoints" / "tight.json").write_text(json.dumps(data), "utf-8")
    monkeypatch.setattr("storyc.compile.endpoints.schemas_dir", lambda: folder)
    endpoints.registry.cache_clear()
    endpoints.asset_limits.cache_clear()
    yield data["id"]
    endpoints.registry.cache_clear()
    endpoints.asset_limits.cache_clear()


def test_a_new_endpoint_is_one_data_file_with_its_own_limits_and_price(tmp_path: Path, tight_endpoint: str) -> None:
    board = make_project(
        tmp_path / "film",
        f"""
        version: 1
        title: Tight
        target:
          endpoint: {tight_endpoint}
        characters:
          ellie:
            frontal: refs/ellie-front.png
            references: [refs/ellie-side.png]
        scenes:
          - id: fits
            prompt: "@ellie waves."
            duration: 8
          - id: long
            prompt: "@ellie walks."
            duration: 12
          - id: many
            shots:
              - {{prompt: "@ellie one.", duration: 2}}
              - {{prompt: "@ellie two.", duration: 2}}
              - {{prompt: "@ellie three.", duration: 2}}
              - {{prompt: "@ellie four.", duration: 2}}
          - id: four_k
            endpoint: {ENDPOINT_4K}
            prompt: "@ellie runs."
            duration: 12
        """,
        BASIC_IMAGES,
    )
    result = compile_file(board, use_cache=False)
    found = [(d.loc.line, d.loc.col, d.message) for d in result.diagnostics if d.loc]
    assert found == [
        (15, 15, "scene 'long': 12 s; its endpoint takes 3 to 10 s"),
        (17, 5, "scene 'many' has 4 shots; its endpoint takes at most 3"),
    ]
    fine = board.read_text("utf-8").replace("duration: 12\n  - id: many", "duration: 9\n  - id: many")
    board.write_text("".join(line for line in fine.splitlines(True) if "@ellie four." not in line), "utf-8")
    fixed = compile_file(board, use_cache=False)
    compiled = fixed.board
    assert compiled is not None, [d.format() for d in fixed.diagnostics]
    costs = {j.scene: (j.endpoint, j.cost_usd) for j in compiled.jobs}
    assert costs["fits"] == (tight_endpoint, Decimal("0.80"))
    assert costs["four_k"] == (ENDPOINT_4K, Decimal("5.04"))  # the same board, the 4K endpoint's price and limits


def test_a_profiles_default_duration_over_its_endpoints_limit_is_reported_at_the_profile(
    tmp_path: Path, tight_endpoint: str
) -> None:
    board = make_project(
        tmp_path / "film",
        f"""
        version: 1
        target:
          endpoint: {ENDPOINT_4K}
          duration: 8
        profiles:
          final: {{}}
          tight:
            endpoint: {tight_endpoint}
            duration: 12
        scenes:
          - id: meet
            prompt: a red ball rolls.
        """,
        BASIC_IMAGES,
    )
    assert compile_file(board, use_cache=False, profile="final").board is not None
    result = compile_file(board, use_cache=False, profile="tight")
    found = [(d.loc.line, d.loc.col, d.message) for d in result.diagnostics if d.loc]
    assert found == [(9, 15, "scene 'meet': 12 s; its endpoint takes 3 to 10 s")]  # the profile's duration
