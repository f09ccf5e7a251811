"""Stills and continuity (the board as a graph): image endpoints as data, stills compiled to requests,
image slots taking a still or a frame of another scene, and Merkle keys through the graph."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

from storyc.compile import cache, endpoints, schemacheck
from storyc.compile.compiler import CompiledBoard, Edge
from storyc.compile.graph import Step, order, step_id
from storyc.compile.pipeline import compile_file

EDIT = "fal-ai/nano-banana-2/edit"
TEXT = "fal-ai/nano-banana-2"


def test_image_endpoints_are_data_priced_per_image_at_a_resolution() -> None:
    edit = endpoints.get_image(EDIT)
    assert edit is not None and edit.kind == "image" and edit.takes_images
    assert edit.cost("1K", 1) == Decimal("0.08")
    assert edit.cost("0.5K", 1) == Decimal("0.06")
    assert edit.cost("2K", 3) == Decimal("0.36")
    assert edit.cost("4K", 4) == Decimal("0.64")
    assert edit.image_name(2) == "image 2"
    assert (edit.limits.num_images_min, edit.limits.num_images_max) == (1, 4)
    assert edit.price_note is None  # read from fal's page
    text = endpoints.get_image(TEXT)
    assert text is not None and not text.takes_images
    assert text.price_note is not None and "until checked" in text.price_note
    assert "image_urls" not in text.input_schema["properties"]


def test_the_video_registry_keeps_only_video_endpoints() -> None:
    assert set(endpoints.registry()) == {
        "fal-ai/kling-video/o3/4k/reference-to-video",
        "fal-ai/kling-video/o3/pro/reference-to-video",
        "fal-ai/kling-video/o3/standard/reference-to-video",
    }
    assert set(endpoints.image_registry()) == {EDIT, TEXT}
    assert set(endpoints.catalog()) == set(endpoints.registry()) | {EDIT, TEXT}
    assert endpoints.get(EDIT) is None and endpoints.get_image(endpoints.DEFAULT_ENDPOINT) is None


def test_every_image_endpoint_schema_takes_the_fast_check() -> None:
    for endpoint in endpoints.image_registry().values():
        assert schemacheck.verdict(endpoint.input_schema) is not None, endpoint.id
        ok = {"prompt": "a red ball", "num_images": 2, "resolution": "2K", "aspect_ratio": "16:9"}
        if endpoint.takes_images:
            ok["image_urls"] = ["https://example.org/a.png"]
        assert endpoint.input_errors(ok) == []
        assert endpoint.input_errors({**ok, "num_images": 5})


ROOT = Path(__file__).resolve().parent.parent
KEYFRAMES = ROOT / "examples" / "keyframes" / "board.yaml"


def compiled(path: Path, profile: str | None = None) -> CompiledBoard:
    result = compile_file(path, "board.yaml", use_cache=False, profile=profile)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    return result.board


def test_the_example_compiles_stills_into_image_requests_named_in_the_endpoints_words() -> None:
    board = compiled(KEYFRAMES)
    sheet, opening = board.stills
    assert sheet.still == "ellie-sheet" and sheet.endpoint == TEXT  # names no reference: text to image
    assert "image_urls" not in sheet.arguments and sheet.depends_on == ()
    assert opening.endpoint == EDIT  # names references: the edit endpoint
    assert opening.arguments == {
        "prompt": "image 1 at the edge of a sunlit savanna clearing, first light, in the palette of image 2",
        "image_urls": ["still://ellie-sheet/1", "refs/dawn-palette.jpg"],  # ellie's frontal is the sheet
        "num_images": 3,
        "aspect_ratio": "16:9",
        "resolution": "0.5K",  # the draft profile's still_resolution
    }
    assert opening.references == {"image 1": "ellie", "image 2": "dawn"}
    assert opening.depends_on == (Edge("still", "ellie-sheet", 1, sheet.key),)
    meet, play = board.jobs
    assert meet.arguments["start_image_url"] == "still://meet-open/2"  # the pick flows on
    assert meet.arguments["elements"][0]["frontal_image_url"] == "still://ellie-sheet/1"
    assert meet.depends_on == (Edge("still", "ellie-sheet", 1, sheet.key), Edge("still", "meet-open", 2, opening.key))
    assert play.arguments["start_image_url"] == "frame://meet/last"
    assert Edge("last_frame_of", "meet", None, meet.key) in play.depends_on


def test_a_stills_price_is_per_image_times_resolution_times_variants_apart_from_the_video() -> None:
    draft, final = compiled(KEYFRAMES, "draft"), compiled(KEYFRAMES, "final")
    assert [s.cost_usd for s in draft.stills] == [Decimal("0.06"), Decimal("0.18")]  # 0.5K: 0.75 x $0.08
    assert [s.cost_usd for s in final.stills] == [Decimal("0.12"), Decimal("0.36")]  # 2K: 1.5 x $0.08
    assert draft.stills_cost == Decimal("0.24") and draft.total_cost == Decimal("0.84")  # video only
    sheet, opening = draft.stills
    assert sheet.price_notes == (endpoints.image_registry()[TEXT].price_note,)  # unverified price
    assert opening.price_notes == (endpoints.image_registry()[EDIT].variants_note,)  # num_images billing
    data = draft.to_json()
    assert data["totals"] == {"scenes_usd": 0.84, "stills_usd": 0.24}
    assert data["stills"][1]["price_certain"] is False


def test_every_key_in_another_profile_differs_and_a_draft_continues_a_draft() -> None:
    draft, final = compiled(KEYFRAMES, "draft"), compiled(KEYFRAMES, "final")
    keys = {s.key for s in draft.stills} | {j.key for j in draft.jobs}
    assert keys.isdisjoint({s.key for s in final.stills} | {j.key for j in final.jobs})
    play = final.job("play")
    assert play is not None and Edge("last_frame_of", "meet", None, final.job("meet").key) in play.depends_on  # type: ignore[union-attr]


def test_a_board_without_stills_or_frames_compiles_to_the_form_it_always_had(tmp_path: Path) -> None:
    board = compiled(make_project(tmp_path, BASIC_BOARD, BASIC_IMAGES))
    assert not board.has_graph and board.stills == ()
    data = board.to_json()
    assert set(data) == {"storyboard", "jobs"}
    assert all("depends_on" not in job for job in data["jobs"])


def test_the_compile_cache_keeps_stills_and_edges(tmp_path: Path) -> None:
    shutil.copytree(KEYFRAMES.parent, tmp_path / "film")
    (tmp_path / "film" / ".git").mkdir()
    path = tmp_path / "film" / "board.yaml"
    fresh = compile_file(path, "board.yaml", use_cache=True)
    cached = cache.lookup(path, "board.yaml")
    assert fresh.board is not None and cached is not None and cached.board is not None
    assert cached.board.stills == fresh.board.stills
    assert [j.depends_on for j in cached.board.jobs] == [j.depends_on for j in fresh.board.jobs]
    assert cached.board.to_json() == fresh.board.to_json()


def test_arguments_with_puts_each_upstream_output_in_its_placeholders_place() -> None:
    board = compiled(KEYFRAMES)
    play = board.job("play")
    assert play is not None
    outputs = {"ellie-sheet": "https://cdn/sheet.png", "meet": "https://cdn/meet-last.png"}
    sent = play.arguments_with(lambda f: f"https://cdn/{f.sha256[7:15]}", lambda e: outputs[e.name])
    assert sent["start_image_url"] == "https://cdn/meet-last.png"
    assert sent["elements"][0]["frontal_image_url"] == "https://cdn/sheet.png"
    assert sent["elements"][1]["frontal_image_url"].startswith("https://cdn/")  # a local file, uploaded
    opening = board.still("meet-open")
    assert opening is not None
    assert opening.arguments_with(lambda f: "https://cdn/dawn", lambda e: outputs[e.name])["image_urls"] == [
        "https://cdn/sheet.png",
        "https://cdn/dawn",
    ]


STILL_BOARD = """
version: 1
target:
  still_endpoint: fal-ai/nano-banana-2/edit
profiles:
  final: {}
  cheap:
    still_endpoint: fal-ai/nano-banana-2
    still_resolution: 0.5K
stills:
  plain:
    prompt: a clearing at dawn
  lit:
    prompt: "a clearing in the light of @dawn"
    resolution: 2K
styles:
  dawn: refs/dawn.png
scenes:
  - id: meet
    start_frame: {still: plain}
    end_frame: {still: lit}
    prompt: "A red ball rolls in."
    duration: 5
"""


def test_target_and_profiles_choose_a_stills_endpoint_and_resolution_and_a_still_wins(tmp_path: Path) -> None:
    path = make_project(tmp_path, STILL_BOARD, BASIC_IMAGES)
    final = compiled(path, "final")
    # the target's edit endpoint for the still naming a reference; its pair, text to image, for the one naming none
    assert [(s.still, s.endpoint, s.resolution) for s in final.stills] == [("plain", TEXT, "1K"), ("lit", EDIT, "2K")]
    cheap = compiled(path, "cheap")
    # the profile's endpoint and resolution; the still's own resolution wins, as a scene's own settings do
    assert [(s.still, s.endpoint, s.resolution) for s in cheap.stills] == [("plain", TEXT, "0.5K"), ("lit", EDIT, "2K")]
    assert cheap.stills[0].key != final.stills[0].key and cheap.stills[1].key == final.stills[1].key


def test_a_stills_own_endpoint_is_taken_as_written(tmp_path: Path) -> None:
    plain = "    prompt: a clearing at dawn\n"
    board = STILL_BOARD.replace(plain, f"{plain}    endpoint: {EDIT}\n")
    result = compile_file(make_project(tmp_path, board, BASIC_IMAGES), "board.yaml", use_cache=False)
    found = [(d.loc.line, d.loc.col, d.message) for d in result.diagnostics if d.loc]
    assert found == [
        (
            12,
            15,
            f"still 'plain' names no character or style, but {EDIT} needs input images: name one (@name), "
            f"or use an endpoint that takes none (like {TEXT})",
        )
    ]


def test_scene_keys_do_not_depend_on_names_of_stills_or_scenes(tmp_path: Path) -> None:
    board = compiled(KEYFRAMES)
    text = KEYFRAMES.read_text("utf-8").replace("meet-open", "first-light").replace("id: meet", "id: arrival")
    text = text.replace("last_frame_of: meet", "last_frame_of: arrival")
    shutil.copytree(KEYFRAMES.parent / "refs", tmp_path / "refs")
    renamed = compiled(make_project(tmp_path, text))
    assert [s.key for s in renamed.stills] == [s.key for s in board.stills]
    assert [j.key for j in renamed.jobs] == [j.key for j in board.jobs]


def test_a_damaged_edge_in_the_compile_cache_is_a_miss_not_a_crash(tmp_path: Path) -> None:
    shutil.copytree(KEYFRAMES.parent, tmp_path / "film")
    (tmp_path / "film" / ".git").mkdir()
    path = tmp_path / "film" / "board.yaml"
    assert compile_file(path, "board.yaml", use_cache=True).ok
    (entry,) = cache.cache_dir(path).glob("*.json")
    data = json.loads(entry.read_text("utf-8"))
    data["result"]["jobs"][0]["depends_on"][0] = {"pick": 1, "key": "sha256:0"}  # no still, no frame
    entry.write_text(json.dumps(data), "utf-8")
    assert cache.lookup(path, "board.yaml") is None


def test_a_style_may_be_a_still_in_short_form_and_a_scene_sends_it_as_an_image(tmp_path: Path) -> None:
    board = compiled(
        make_project(
            tmp_path,
            """
            version: 1
            stills:
              palette:
                prompt: a palette of dawn colours
            styles:
              dawn: {still: palette}
              dusk: {image: {still: palette}, description: the same later}
            scenes:
              - id: meet
                prompt: "A red ball rolls in, lit like @dawn, then @dusk."
                duration: 5
            """,
        )
    )
    (palette,) = board.stills
    meet = board.job("meet")
    assert meet is not None and meet.arguments["image_urls"] == ["still://palette/1", "still://palette/1"]
    assert meet.depends_on == (Edge("still", "palette", 1, palette.key),)


def test_the_order_puts_upstreams_first_and_refuses_a_cycle() -> None:
    board = compiled(KEYFRAMES)
    steps: list[Step] = [*reversed(board.jobs), *reversed(board.stills)]  # downstream first
    assert [step_id(s) for s in order(steps)] == [
        ("still", "ellie-sheet"),
        ("still", "meet-open"),
        ("scene", "meet"),
        ("scene", "play"),
    ]
    meet = board.job("meet")
    assert meet is not None
    looped = replace(meet, depends_on=(*meet.depends_on, Edge("first_frame_of", "play")))
    with pytest.raises(ValueError, match="dependency cycle"):
        order([looped, *board.jobs[1:]])
