"""`json.dumps(value, indent=2, ensure_ascii=False)`, the same text, faster; amounts in USD exact.

With `indent`, the standard library encodes in pure Python through nested
generators; `compile --json` on a 1,000-scene board prints about 1.4 MB that
way.  This writes the same text with one recursive function over plain JSON
values (strings escaped by the standard library's C escaper), and hands
anything else (a non-string key, a custom type, NaN...) back to `json.dumps`,
so the output is byte-identical in every case.

Money is a `Decimal` (7 s at $0.084 is exactly 0.588), and is written as a
JSON number with exactly its digits, never through a float's arithmetic:
`0.588`, `4.2`, `0.0` (the text Python gives the float of the same value, so
amounts that were whole cents read as they always did).
"""

from __future__ import annotations

import json
from decimal import Decimal
from json.encoder import encode_basestring  # the C escaper when available
from typing import Any


class _NotPlain(Exception):
    pass


def dumps_indented(value: Any) -> str:
    """Exactly `json.dumps(value, indent=2, ensure_ascii=False)`."""
    parts: list[str] = []
    try:
        _encode(value, parts, "\n")
    except (_NotPlain, RecursionError):
        return json.dumps(value, indent=2, ensure_ascii=False, default=_amount)
    return "".join(parts)


def decimal_text(amount: Decimal) -> str:
    """A finite Decimal as a JSON number holding exactly its digits: 0.588, 4.2 (for 4.20), 0.0, 12.0."""
    text = format(amount.normalize(), "f")
    return text if "." in text else text + ".0"


def _amount(value: Any) -> float:
    """For `json.dumps`' rare path: an amount's float, whose repr is `decimal_text`'s digits (an amount
    has at most 15 significant digits); anything else is refused as `json.dumps` would."""
    if isinstance(value, Decimal) and value.is_finite():
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode(value: Any, parts: list[str], newline: str) -> None:
    kind = type(value)
    if kind is str:
        parts.append(encode_basestring(value))
    elif kind is dict:
        if not value:
            parts.append("{}")
            return
        inner = newline + "  "
        first = True
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            parts.append(("{" if first else ",") + inner + encode_basestring(key) + ": ")
            first = False
            _encode(item, parts, inner)
        parts.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            parts.append("[]")
            return
        inner = newline + "  "
        first = True
        for item in value:
            parts.append(("[" if first else ",") + inner)
            first = False
            _encode(item, parts, inner)
        parts.append(newline + "]")
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif kind is int:
        parts.append(int.__repr__(value))
    elif kind is float and value == value and value not in (float("inf"), float("-inf")):
        parts.append(float.__repr__(value))
    elif kind is Decimal and value.is_finite():
        parts.append(decimal_text(value))
    else:
        raise _NotPlain
