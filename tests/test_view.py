"""The typed scene view (`Job.view`): built by the compiler, cached as JSON, read back strictly."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

from storyc.compile import cache
from storyc.compile.compiler import CompiledBoard
from storyc.compile.model import is_url
from storyc.compile.pipeline import compile_file
from storyc.compile.view import RefView, SceneView, ShotView
from storyc.render.backends.animatic import AnimaticBackend


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    return make_project(tmp_path, BASIC_BOARD, BASIC_IMAGES)


def compiled(path: Path, *, use_cache: bool = False) -> CompiledBoard:
    result = compile_file(path, "board.yaml", use_cache=use_cache)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    return result.board


def test_the_compiler_builds_typed_views(basic: Path) -> None:
    board = compiled(basic)
    meet, play = board.job("meet"), board.job("play")
    assert meet is not None and play is not None
    assert meet.view.aspect_ratio == "16:9"
    assert meet.view.shots == (
        ShotView(
            8,
            (
                ("@ellie", "ellie"),
                (" meets ", None),
                ("@rex", "rex"),
                (" in the light of ", None),
                ("@dawn", "dawn"),
                (".", None),
            ),
        ),
    )
    assert meet.view.shots[0].text == "@ellie meets @rex in the light of @dawn."
    assert meet.view.shots[0].names == ("ellie", "rex", "dawn")
    assert meet.view.refs["ellie"] == RefView("character", "refs/ellie-front.png", "a young grey elephant")
    assert meet.view.refs["dawn"] == RefView("style", "refs/dawn.png", None)
    assert [s.seconds for s in play.view.shots] == [3, 4]
    assert play.view.refs["noir"].asset == "https://example.org/noir.jpg"
    lines = basic.read_text("utf-8").splitlines()
    assert play.view.locations["scene"][0] == lines.index("  - id: play") + 1
    assert play.view.locations["multi_prompt.1"][0] == lines.index('      - prompt: "@ellie follows @rex."') + 1
    assert all(type(at) is tuple and len(at) == 2 for at in play.view.locations.values())


def test_views_are_not_part_of_compile_json(basic: Path) -> None:
    board = compiled(basic)
    assert all("view" not in job for job in board.to_json()["jobs"])


def test_views_round_trip_through_json(basic: Path) -> None:
    for job in compiled(basic).jobs:
        data = json.loads(json.dumps(job.view.to_json()))
        assert SceneView.from_json(data) == job.view


def test_a_cache_hit_gives_the_same_views(basic: Path) -> None:
    first = compiled(basic, use_cache=True)
    second = compiled(basic, use_cache=True)
    assert [j.view for j in second.jobs] == [j.view for j in first.jobs]


def _damaged(view: dict[str, Any], how: str) -> dict[str, Any]:
    data = copy.deepcopy(view)
    if how == "missing":
        del data["refs"]
    elif how == "seconds":
        data["shots"][0]["seconds"] = "8"
    elif how == "bool":
        data["shots"][0]["seconds"] = True
    elif how == "kind":
        next(iter(data["refs"].values()))["kind"] = "prop"
    elif how == "location":
        data["locations"]["scene"] = [1, 2, 3]
    elif how == "segment":
        data["shots"][0]["segments"][0] = ["text", 7]
    elif how == "segment-string":
        data["shots"][0]["segments"][0] = "ab"
    elif how == "location-string":
        data["locations"]["scene"] = "12"
    return data


@pytest.mark.parametrize(
    "how", ["missing", "seconds", "bool", "kind", "location", "segment", "segment-string", "location-string"]
)
def test_a_damaged_view_is_refused(basic: Path, how: str) -> None:
    view = compiled(basic).jobs[0].view.to_json()
    with pytest.raises((KeyError, TypeError, ValueError)):
        SceneView.from_json(_damaged(view, how))


def test_a_damaged_cached_view_is_a_miss(basic: Path) -> None:
    first = compiled(basic, use_cache=True)
    (entry_file,) = cache.cache_dir(basic).glob("*.json")
    entry = json.loads(entry_file.read_text())
    entry["result"]["jobs"][0]["view"]["shots"][0]["seconds"] = "8"
    entry_file.write_text(json.dumps(entry))
    assert cache.lookup(basic, "board.yaml") is None
    again = compiled(basic, use_cache=True)  # compiled afresh
    assert [j.view for j in again.jobs] == [j.view for j in first.jobs]


def test_is_url() -> None:
    assert is_url("https://example.org/noir.jpg")
    assert not is_url("refs/dawn.png")


def test_the_animatic_refuses_an_aspect_ratio_it_cannot_draw(basic: Path) -> None:
    job = compiled(basic).jobs[0]
    backend = AnimaticBackend(basic.parent, "Basic")
    assert backend.scene(job).aspect_ratio == "16:9"
    odd = replace(job, view=replace(job.view, aspect_ratio="4:3"))
    with pytest.raises(ValueError, match="4:3"):
        backend.scene(odd)
