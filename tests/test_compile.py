"""The compiler on small boards written by the tests: numbering, keys, cost, caching."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import BASIC_BOARD, BASIC_IMAGES, make_image, make_project

from storyc.compile.compiler import CompileResult
from storyc.compile.pipeline import compile_file


def compile_ok(path: Path, *, use_cache: bool = False) -> CompileResult:
    result = compile_file(path, "board.yaml", use_cache=use_cache)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    return result


def jobs_by_scene(path: Path) -> dict[str, dict[str, Any]]:
    result = compile_ok(path)
    assert result.board is not None
    return {j["scene"]: j for j in result.board.to_json()["jobs"]}


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    return make_project(tmp_path, BASIC_BOARD, BASIC_IMAGES)


def test_numbering_by_first_mention_per_scene(basic: Path) -> None:
    jobs = jobs_by_scene(basic)
    meet, play = jobs["meet"], jobs["play"]
    assert meet["arguments"]["prompt"] == "@Element1 meets @Element2 in the light of @Image1."
    assert meet["references"] == {"@Element1": "ellie", "@Element2": "rex", "@Image1": "dawn"}
    assert [e["frontal_image_url"] for e in meet["arguments"]["elements"]] == [
        "refs/ellie-front.png",
        "refs/rex-front.png",
    ]
    # In 'play', rex is mentioned first, so rex is @Element1 there.
    assert play["references"] == {"@Element1": "rex", "@Element2": "ellie", "@Image1": "noir"}
    assert play["arguments"]["multi_prompt"] == [
        {"prompt": "@Element1 runs, styled like @Image1.", "duration": "3"},
        {"prompt": "@Element2 follows @Element1.", "duration": "4"},
    ]
    assert play["arguments"]["image_urls"] == ["https://example.org/noir.jpg"]
    assert play["arguments"]["duration"] == "7"
    assert play["arguments"]["shot_type"] == "customize"


def test_cost_is_seconds_times_price(basic: Path) -> None:
    jobs = jobs_by_scene(basic)
    assert jobs["meet"]["seconds"] == 8
    assert jobs["meet"]["cost_usd"] == Decimal("3.36")  # exact: a Decimal, written exactly as JSON
    assert jobs["play"]["cost_usd"] == Decimal("2.94")


def test_durations_are_sent_as_strings_and_audio_as_boolean(basic: Path) -> None:
    args = jobs_by_scene(basic)["meet"]["arguments"]
    assert args["duration"] == "8"
    assert args["generate_audio"] is False
    assert args["aspect_ratio"] == "16:9"


def test_with_sends_unmentioned_reference_after_mentioned_ones(tmp_path: Path) -> None:
    board = BASIC_BOARD.replace(
        'prompt: "@ellie meets @rex in the light of @dawn."', 'prompt: "@rex waits."\n    with: [noir, ellie]'
    )
    path = make_project(tmp_path, board, BASIC_IMAGES)
    meet = jobs_by_scene(path)["meet"]
    assert meet["references"] == {"@Element1": "rex", "@Element2": "ellie", "@Image1": "noir"}


def test_key_ignores_file_names_but_not_bytes(basic: Path) -> None:
    before = jobs_by_scene(basic)
    (basic.parent / "refs/dawn.png").rename(basic.parent / "refs/dawn-renamed.png")
    basic.write_text(basic.read_text().replace("refs/dawn.png", "refs/dawn-renamed.png"))
    renamed = jobs_by_scene(basic)
    assert renamed["meet"]["key"] == before["meet"]["key"]
    assert renamed["meet"]["arguments"]["image_urls"] == ["refs/dawn-renamed.png"]
    make_image(basic.parent / "refs/dawn-renamed.png", color="purple")
    repainted = jobs_by_scene(basic)
    assert repainted["meet"]["key"] != before["meet"]["key"]
    assert repainted["play"]["key"] == before["play"]["key"]  # play doesn't use dawn


def test_editing_one_scene_keeps_the_other_scenes_keys(basic: Path) -> None:
    before = jobs_by_scene(basic)
    basic.write_text(basic.read_text().replace("@ellie follows @rex.", "@ellie follows @rex slowly."))
    after = jobs_by_scene(basic)
    assert after["meet"]["key"] == before["meet"]["key"]
    assert after["play"]["key"] != before["play"]["key"]


def test_key_is_sha256_of_canonical_request(basic: Path) -> None:
    import hashlib

    meet = jobs_by_scene(basic)["meet"]
    args = json.loads(json.dumps(meet["arguments"]))
    digest = {p: hashlib.sha256((basic.parent / p).read_bytes()).hexdigest() for p in BASIC_IMAGES}
    for element in args["elements"]:
        element["frontal_image_url"] = "sha256:" + digest[element["frontal_image_url"]]
        element["reference_image_urls"] = ["sha256:" + digest[u] for u in element["reference_image_urls"]]
    args["image_urls"] = ["sha256:" + digest[u] for u in args["image_urls"]]
    canonical = json.dumps(
        {"endpoint": meet["endpoint"], "arguments": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert meet["key"] == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def test_structured_fields_use_the_default_layout(tmp_path: Path) -> None:
    board = BASIC_BOARD.replace(
        'prompt: "@ellie meets @rex in the light of @dawn."',
        'scene: "{{ vars.place }} at dawn"\n'
        '    subjects: "@ellie enters; @rex follows."\n'
        "    style: palette of @dawn\n"
        "    camera: slow push-in\n"
        "    audio: birdsong\n"
        "    constraints: [preserve element identity, no watermark]",
    ).replace("characters:", "vars:\n  place: a clearing\ncharacters:")
    path = make_project(tmp_path, board, BASIC_IMAGES)
    result = compile_ok(path)
    prompt = {j.scene: j for j in result.board.jobs}["meet"].arguments["prompt"]  # type: ignore[union-attr]
    assert prompt == (
        "Scene: a clearing at dawn\n\n"
        "Subjects: @Element1 enters; @Element2 follows.\n\n"
        "Style references: palette of @Image1\n\n"
        "Camera: slow push-in\n\n"
        "Constraints: preserve element identity, no watermark"
    )
    assert any("'audio' is left out" in d.message for d in result.diagnostics)


def test_custom_template_and_shot_template(tmp_path: Path) -> None:
    board = (
        BASIC_BOARD.replace(
            "characters:",
            "templates:\n"
            '  numbered: "Shot {{ loop.index }}/{{ loop.length }}: {{ shot.prompt }}"\n'
            "  spot:\n    file: spot.j2\n"
            "characters:",
        )
        .replace('prompt: "@ellie meets @rex in the light of @dawn."', 'template: spot\n    subjects: "@ellie waves"')
        .replace("  - id: play\n", "  - id: play\n    shot_template: numbered\n")
    )
    path = make_project(tmp_path, board, BASIC_IMAGES)
    (tmp_path / "spot.j2").write_text("{{ scene.subjects }} at {{ scene.id }}, look of {{ styles.dawn.ref }}.\n")
    jobs = jobs_by_scene(path)
    assert jobs["meet"]["arguments"]["prompt"] == "@Element1 waves at meet, look of @Image1."
    assert [s["prompt"] for s in jobs["play"]["arguments"]["multi_prompt"]] == [
        "Shot 1/2: @Element1 runs, styled like @Image1.",
        "Shot 2/2: @Element2 follows @Element1.",
    ]


def test_video_element(tmp_path: Path) -> None:
    board = BASIC_BOARD.replace(
        "  rex:\n    frontal: refs/rex-front.png\n    references: [refs/rex-side.png]",
        "  rex:\n    video: refs/rex.mp4\n    voice: v_123",
    )
    path = make_project(tmp_path, board, BASIC_IMAGES)
    # a real video: the compiler decodes it to the end (a bare MP4 header is refused as damaged)
    ball = Path(__file__).resolve().parent.parent / "examples" / "elephant" / "refs" / "ball.mp4"
    (tmp_path / "refs/rex.mp4").write_bytes(ball.read_bytes())
    meet = jobs_by_scene(path)["meet"]
    assert meet["arguments"]["elements"][1] == {"video_url": "refs/rex.mp4", "voice_id": "v_123"}


def test_compile_cache_hits_and_notices_changes(basic: Path) -> None:
    first = compile_file(basic, "board.yaml")
    cache_files = list((basic.parent / ".storyc" / "compile").glob("*.json"))
    assert len(cache_files) == 1
    second = compile_file(basic, "board.yaml")
    assert second.board is not None and first.board is not None
    assert second.board.to_json() == first.board.to_json()
    # Tamper with the cached entry: a hit must return the tampered content, proving it was used.
    entry = json.loads(cache_files[0].read_text())
    entry["result"]["title"] = "from-cache"
    cache_files[0].write_text(json.dumps(entry))
    assert compile_file(basic, "board.yaml").board.title == "from-cache"  # type: ignore[union-attr]
    # Repainting an asset (same size, new mtime) is a miss.
    asset = basic.parent / "refs/dawn.png"
    make_image(asset, color="purple")
    os.utime(asset, ns=(1, 1))
    third = compile_file(basic, "board.yaml")
    assert third.board is not None and third.board.title == "Basic"
    assert third.board.job("meet").key != first.board.job("meet").key  # type: ignore[union-attr]


def test_compile_cache_never_stores_failures(tmp_path: Path) -> None:
    board = BASIC_BOARD.replace("refs/dawn.png", "refs/later.png")
    path = make_project(tmp_path, board, BASIC_IMAGES)
    assert compile_file(path, "board.yaml").board is None
    make_image(tmp_path / "refs/later.png")
    assert compile_file(path, "board.yaml").board is not None
