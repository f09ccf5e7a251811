"""storyc.jsontext.dumps_indented is byte for byte json.dumps(indent=2, ensure_ascii=False)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storyc.jsontext import decimal_text, dumps_indented

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


AMOUNTS = st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(AMOUNTS, st.booleans())
def test_amounts_are_written_with_exactly_their_digits(amount: Decimal, odd_key: bool) -> None:
    """A Decimal is its own digits as a JSON number (0.588, not 0.59 or 0.58799...), on either path."""
    value = {1: [amount]} if odd_key else {"cost_usd": [amount]}  # a non-string key takes json.dumps' path
    text = dumps_indented(value)
    assert json.loads(text, parse_float=Decimal) == {("1" if odd_key else "cost_usd"): [amount]}
    assert decimal_text(amount) == repr(float(amount))  # whole cents read as they always did: 4.2, 0.0
    assert decimal_text(amount) in text


def test_the_draft_price_of_seven_seconds() -> None:
    assert dumps_indented({"cost_usd": Decimal("0.084") * 7}) == '{\n  "cost_usd": 0.588\n}'
    assert dumps_indented([Decimal("0.00"), Decimal("4.20"), Decimal("12")]) == "[\n  0.0,\n  4.2,\n  12.0\n]"
