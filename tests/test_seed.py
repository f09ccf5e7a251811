"""Every example on fal's page for the endpoint, expressed as a board and compiled to the page's payload.

`tests/cases/seed/fal-page.txt` is the text of fal's public page for
`fal-ai/kling-video/o3/4k/reference-to-video` (the JavaScript snippets, the
cURL and Python calls, and the JSON element structures). This test finds
every request example in it, parses it, and compiles the board written for
it under `tests/cases/seed/`; the compiled arguments must give every field
the page gives, with the same value. The page writes "..." for URLs; the
boards use https URLs under `https://example.org/seed/`, which storyc passes
through as written, and which are read back as "...". Fields storyc sends
that the page leaves out must be the endpoint's documented default (storyc
always sends `duration`, `aspect_ratio` and `generate_audio`), or a
multi-shot request's `duration`, which storyc sends as the sum of the shots.

The multi-shot example (two video elements, `image_urls`, audio on) is also
a golden: its compiled arguments are `multi-shot-with-references.json`,
byte for byte.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fakefal.validation import FileCheck, load_endpoints, validate_payload

from storyc.compile.endpoints import DEFAULT_ENDPOINT, get
from storyc.compile.pipeline import compile_file

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "cases" / "seed"
PAGE = (SEED / "fal-page.txt").read_text("utf-8")
STAND_IN = re.compile(r"^https://example\.org/seed/")
ELIDED = object()  # `[/* ... */]` on the page: any non-empty list


def _balanced(text: str, start: int) -> str:
    """The {...} starting at text[start], strings respected."""
    depth, i, quote = 0, start, ""
    while True:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
        i += 1


def _literal(js: str) -> Any:
    """A JavaScript / Python object literal as on the page -> Python data."""
    js = re.sub(r"\[\s*/\*.*?\*/\s*\]", '"__ELIDED__"', js)
    js = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', js)  # bare keys
    js = re.sub(r",(\s*[}\]])", r"\1", js)  # trailing commas
    js = js.replace(": true", ": true").replace("True", "true").replace("False", "false")
    data = json.loads(js)

    def elide(v: Any) -> Any:
        if v == "__ELIDED__":
            return ELIDED
        if isinstance(v, dict):
            return {k: elide(x) for k, x in v.items()}
        if isinstance(v, list):
            return [elide(x) for x in v]
        return v

    return elide(data)


def _heading_before(pos: int) -> str:
    lines = PAGE[:pos].rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() in ("javascript", "bash", "python", "json"):
            # the nearest short line above the snippet's language marker: its heading
            return next(t.strip() for t in reversed(lines[:i]) if t.strip() and len(t) < 60)
    raise AssertionError("no heading")


def page_examples() -> dict[str, Any]:
    """Every request input on the page, by the heading it is under."""
    found: dict[str, Any] = {}
    for match in re.finditer(r"\binput: \{", PAGE):
        found[_heading_before(match.start())] = _literal(_balanced(PAGE, match.end() - 1))
    for match in re.finditer(r"--data '\{", PAGE):
        found["cURL"] = _literal(_balanced(PAGE, match.end() - 1))
    for match in re.finditer(r"\barguments=\{", PAGE):
        found["Python"] = _literal(_balanced(PAGE, match.end() - 1))
    structure = PAGE[PAGE.index("Element structure") : PAGE.index("Elements are referenced positionally")]
    blocks = [_literal(_balanced(structure, m.start())) for m in re.finditer(r"(?m)^\{", structure)]
    found["Element structure (image set)"], found["Element structure (video)"] = blocks
    return found


# heading on the page -> (board, scene, what of the compiled arguments the example is)
BOARDS: dict[str, tuple[str, str, str]] = {
    "Reference to video": ("reference-to-video", "reference-to-video", "input"),
    "Elements + style references": ("elements-and-style-references", "elements-and-style-references", "input"),
    "Start + end frame with references": ("start-and-end-frame", "start-and-end-frame", "input"),
    "Multi-shot with references": ("multi-shot-with-references", "multi-shot", "input"),
    "Long-Running Requests": ("queue-submit", "queue-submit", "input"),
    "cURL": ("curl-and-python", "curl-and-python", "input"),
    "Python": ("curl-and-python", "curl-and-python", "input"),
    "Element structure (image set)": ("element-structure", "image-set", "element"),
    "Element structure (video)": ("element-structure", "video", "element"),
}


def test_the_walk_finds_every_example_on_the_page() -> None:
    assert set(page_examples()) == set(BOARDS)
    # The page's JavaScript calls: four under Quick Start, one queue submit.
    assert PAGE.count("fal.subscribe(") == 4 and PAGE.count("fal.queue.submit(") == 1


def _as_page(value: Any) -> Any:
    """Compiled arguments with the stand-in URLs read back as the page's '...'."""
    if isinstance(value, dict):
        return {k: _as_page(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_page(v) for v in value]
    if isinstance(value, str) and STAND_IN.match(value):
        return "..."
    return value


def _compiled(board: str) -> dict[str, dict[str, Any]]:
    display = f"tests/cases/seed/{board}.yaml"
    result = compile_file(ROOT / display, display, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    assert [d for d in result.diagnostics if d.severity == "error"] == []
    return {j.scene: j.arguments for j in result.board.jobs}


@pytest.mark.parametrize("heading", list(BOARDS))
def test_storyc_expresses_the_page_example(heading: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    board, scene, what = BOARDS[heading]
    expected = page_examples()[heading]
    arguments = _compiled(board)[scene]
    if what == "element":
        assert arguments["elements"] == [expected]
        return
    actual = _as_page(arguments)
    for field_name, value in expected.items():
        assert field_name in actual, f"{heading}: storyc does not send {field_name}"
        if value is ELIDED:
            assert isinstance(actual[field_name], list) and actual[field_name]
        else:
            assert actual[field_name] == value, f"{heading}: {field_name}"
    endpoint = get(DEFAULT_ENDPOINT)
    assert endpoint is not None
    defaults = {k: v["default"] for k, v in endpoint.input_schema["properties"].items() if "default" in v}
    for field_name in set(actual) - set(expected):
        if field_name == "duration" and "multi_prompt" in actual:
            assert actual["duration"] == str(sum(int(s["duration"]) for s in actual["multi_prompt"]))
        else:
            assert actual[field_name] == defaults.get(field_name), f"{heading}: extra field {field_name}"
    # The fake fal server (a model of fal's validation) takes every one of them.
    fake = load_endpoints()[DEFAULT_ENDPOINT]
    verdict = validate_payload(fake, arguments, check_file=lambda url: FileCheck(ours=False))
    assert verdict.errors == []


def test_the_multi_shot_example_is_a_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two video elements, a style image, audio on, shot_type customize: compiles, with a located warning."""
    monkeypatch.chdir(ROOT)
    display = "tests/cases/seed/multi-shot-with-references.yaml"
    result = compile_file(ROOT / display, display, use_cache=False)
    assert result.board is not None
    assert [d.format() for d in result.diagnostics] == [
        f"{display}:16:9: warning: scene 'multi-shot' uses 2 video characters (one, two); fal's type text says "
        f'"only one element with a video", though the {DEFAULT_ENDPOINT} page\'s "Multi-shot with references" '
        "example sends two: fal may refuse the request"
    ]
    (job,) = result.board.jobs
    actual = json.dumps(job.arguments, indent=2) + "\n"
    golden = SEED / "multi-shot-with-references.json"
    if os.environ.get("STORYC_UPDATE_GOLDENS"):
        golden.write_text(actual, "utf-8")
    assert actual == golden.read_text("utf-8")
    # The page's payload, field for field and in its order, plus the duration storyc always sends.
    page = page_examples()["Multi-shot with references"]
    as_page = _as_page(job.arguments)
    assert as_page.pop("duration") == "10"
    assert json.dumps(as_page) == json.dumps(page)
    assert not job.price_certain and job.uncertain_usd == job.cost_usd


def test_endpoint_sources_are_public_documents() -> None:
    """An endpoint file cites where its facts come from: public https documents, never a local path."""
    for path in sorted((ROOT / "schemas" / "endpoints").glob("*.json")):
        sources = json.loads(path.read_text("utf-8"))["sources"]
        assert sources, path.name
        for source in sources:
            assert re.match(r"https://[a-z0-9.-]+\.[a-z]+/", source), (path.name, source)
            assert ".." not in source.split()[0], (path.name, source)
