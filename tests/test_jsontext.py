"""storyc.jsontext.dumps_indented is byte for byte json.dumps(indent=2, ensure_ascii=False)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storyc.jsontext import dumps_indented

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text())
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner, inner)
    | st.dictionaries(st.one_of(st.text(max_size=5), st.integers(0, 3)), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_edge_cases() -> None:
    for value in [{}, [], {"a": []}, [{}], "é\u2028\n\"\\", -0.0, 1e100, float("nan"), {True: 1}, (), object]:
        try:
            expected = json.dumps(value, indent=2, ensure_ascii=False)
        except TypeError:
            continue
        assert dumps_indented(value) == expected
