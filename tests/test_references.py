from __future__ import annotations

import pytest

from storyc.compile.references import _rewrite, mentions, tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@ellie meets @ball", ["ellie", "ball"]),
        ("mail hello@example.com or @ellie", ["ellie"]),
        ("@@ellie is literal", []),
        ("x@@ellie", []),
        ("@ellie's scarf, (@dawn).", ["ellie", "dawn"]),
        ("meet @ 5pm, @5 and @_x", []),
        ("_@ellie", ["ellie"]),
        ("@@@ellie", ["ellie"]),
    ],
)
def test_mentions(text: str, expected: list[str]) -> None:
    assert mentions(text) == expected


def test_rewrite_positions_escapes_and_segments() -> None:
    resolved = _rewrite("@ellie meets @ball; @@home; a@b.c; @ellie again", {"ellie": "@Element2", "ball": "@Element1"})
    assert resolved.text == "@Element2 meets @Element1; @home; a@b.c; @Element2 again"
    assert resolved.segments == (
        ("@ellie", "ellie"),
        (" meets ", None),
        ("@ball", "ball"),
        ("; @home; a@b.c; ", None),
        ("@ellie", "ellie"),
        (" again", None),
    )


def test_token_spans_cover_the_reference() -> None:
    text = "see @noir now"
    (token,) = list(tokens(text))
    assert text[token.start : token.end] == "@noir"
    assert token.name == "noir"
