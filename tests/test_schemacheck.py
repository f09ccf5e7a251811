"""The fast schema check (storyc/compile/schemacheck.py) agrees with jsonschema wherever it answers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from storyc.compile import endpoints, schemacheck
from storyc.compile.source import load
from storyc.compile.validate import _ecma_regex, _validator, storyboard_schema
from storyc.diagnostics import Diagnostics

ROOT = Path(__file__).resolve().parent.parent
BOARDS = sorted([*ROOT.glob("examples/*/*.yaml"), *ROOT.glob("tests/cases/invalid/*.yaml")])


def board_data(path: Path) -> Any:
    doc = load(path, Diagnostics(path.name))
    return None if doc is None else doc.data


def board_verdict() -> Any:
    judge = schemacheck.verdict(storyboard_schema(), _ecma_regex)
    assert judge is not None, "the storyboard schema uses a keyword the fast check does not know"
    return judge


def jsonschema_valid(instance: Any) -> bool:
    return not any(True for _ in _validator().iter_errors(instance))


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_boards_get_jsonschemas_verdict(path: Path) -> None:
    data = board_data(path)
    if data is None:
        return
    answer = board_verdict()(data)
    assert answer is None or answer == jsonschema_valid(data)
    if path.parent.parent.name == "examples":
        assert answer is True  # valid boards take the fast path


def test_every_endpoint_schema_is_handled() -> None:
    for endpoint in endpoints.registry().values():
        assert schemacheck.verdict(endpoint.input_schema) is not None, endpoint.id


def test_unknown_keywords_leave_it_to_jsonschema() -> None:
    assert schemacheck.checker({"type": "object", "patternProperties": {"^a": {"type": "string"}}}) is None
    assert schemacheck.checker({"$ref": "https://example.org/other.json"}) is None
    assert schemacheck.checker({"items": [{"type": "string"}]}) is None


def test_cases_it_cannot_judge_exactly() -> None:
    judge = schemacheck.verdict({"enum": [1, "a"], "uniqueItems": True})
    assert judge is not None
    assert judge(1.0) is None  # jsonschema: 1.0 equals 1
    assert judge([{"a": 1}, {"a": 1}]) is None
    assert judge("a") is True
    assert judge("b") is False
    integer = schemacheck.verdict({"type": "integer", "minimum": 3})
    assert integer is not None
    assert integer(3.0) is True and integer(True) is False and integer(2) is False


# --- random edits of a valid board, and random requests --------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 20),
    st.floats(-1, 20, allow_nan=False),
    st.sampled_from(["", "a", "A1", "x-y", "1a", "meet\n", "16:9", "customize", "9", "refs/c.png", "@ellie"]),
)
KEYS = st.sampled_from(["a", "id", "prompt", "file", "text", "image", "1x", "duration"])
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


def edited(base: Any, data: st.DataObject) -> Any:
    doc = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths(doc)))
        new = data.draw(VALUES)
        if not where:
            continue
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "style", "with", "shots", "version", "template"]))] = new
        else:
            parent[where[-1]] = new
    return doc


EDITS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EDITS
@given(st.data())
def test_edited_boards_get_jsonschemas_verdict(data: st.DataObject) -> None:
    base = board_data(data.draw(st.sampled_from(sorted(ROOT.glob("examples/*/*.yaml")))))
    doc = edited(base, data)
    answer = board_verdict()(doc)
    assert answer is None or answer == jsonschema_valid(doc), json.dumps(doc)[:2000]


@EDITS
@given(st.data())
def test_edited_requests_get_jsonschemas_verdict(data: st.DataObject) -> None:
    endpoint = endpoints.get(endpoints.DEFAULT_ENDPOINT)
    assert endpoint is not None
    base = {
        "multi_prompt": [{"prompt": "a", "duration": "3"}, {"prompt": "b", "duration": "4"}],
        "elements": [{"frontal_image_url": "f.png", "reference_image_urls": ["r.png"]}],
        "image_urls": ["s.png"],
        "duration": "7",
        "aspect_ratio": "16:9",
        "shot_type": "customize",
        "generate_audio": False,
    }
    doc = edited(base, data)
    judge = schemacheck.verdict(endpoint.input_schema)
    assert judge is not None
    answer = judge(doc)
    valid = not any(True for _ in Draft202012Validator(endpoint.input_schema).iter_errors(doc))
    assert answer is None or answer == valid, json.dumps(doc)
