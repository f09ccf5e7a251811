"""The fast parse (libyaml composes, storyc resolves plain scalars) gives what the reference path gives.

The reference is ruamel.yaml in pure Python (`source.parse` without the fast path); the fast path
must match it on data, every position and every scalar's source text, on generated boards and on
every board the repository has, and leave every board with a problem to the reference path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storyc.compile import source
from storyc.compile.source import SourceDoc, parse, resolve_plain
from storyc.diagnostics import Diagnostics
from storyc.files import LOCAL

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("yaml._yaml", reason="PyYAML's C extension (libyaml) is not installed: only the reference path")


def both(text: str) -> tuple[SourceDoc | None, list[str], SourceDoc | None, list[str]]:
    """(fast doc, its diagnostics, reference doc, its diagnostics) for one text."""
    fast_diags, ref_diags = Diagnostics("b.yaml"), Diagnostics("b.yaml")
    fast = parse(text, Path("/tmp/b.yaml"), fast_diags)
    real = source._parse_fast
    try:
        source._parse_fast = lambda *args: None
        ref = parse(text, Path("/tmp/b.yaml"), ref_diags)
    finally:
        source._parse_fast = real
    return fast, [d.format() for d in fast_diags], ref, [d.format() for d in ref_diags]


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_same(text: str) -> None:
    fast, fast_problems, ref, ref_problems = both(text)
    assert fast_problems == ref_problems
    assert (fast is None) == (ref is None)
    if fast is None or ref is None:
        return
    assert same_value(fast.data, ref.data), (fast.data, ref.data)
    assert fast.value_locs == ref.value_locs
    assert fast.key_locs == ref.key_locs
    # Scalars' source text (an empty value's span starts at the next token in ruamel, in place in libyaml).
    texts = {p: text[s.start : s.end] for p, s in fast.spans.items()}
    assert texts == {p: text[s.start : s.end] for p, s in ref.spans.items()}


def fast_path_taken(text: str) -> bool:
    return source._parse_fast(text, Path("/tmp/b.yaml"), "b.yaml", LOCAL) is not None


PLAIN_WORDS = [
    "yes", "no", "on", "off", "y", "n", "true", "True", "FALSE", "null", "Null", "~", "16:9", "9:16", "1:30",
    "0x1F", "0o17", "017", "0b101", "1_000", "+12", "-0", "1.5", "1e5", "1.5e-3", ".5", ".inf", "-.Inf", ".NaN",
    "2024-01-01", "2024-01-01 10:00:00", "=", "<<x", "12abc", "walks with @ellie", "4K", "0.5K", "fal-ai/x", "a: b",
]  # fmt: skip


@pytest.mark.parametrize("word", PLAIN_WORDS)
def test_plain_scalars_resolve_as_yaml_1_2(word: str) -> None:
    text = f"version: 1\nvalue: {word}\nlist: [{word}]\n" if ": " not in word else f"value: '{word}'\n"
    assert_same(text)
    assert fast_path_taken(text) == (word != "=")  # '=' is YAML's `value` type: refused, by the reference path


def test_the_resolver_names_yaml_1_2_types() -> None:
    assert [resolve_plain(w) for w in ("yes", "16:9", "true", "0o17", "", "~", "1e5", "=")] == [
        "tag:yaml.org,2002:str",
        "tag:yaml.org,2002:str",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:value",
    ]


def _boards() -> list[Path]:
    found = sorted(ROOT.glob("examples/*/board.yaml")) + sorted((ROOT / "tests" / "cases").rglob("*.yaml"))
    return [p for p in found if p.stat().st_size < 2_000_000]


@pytest.mark.parametrize("board", _boards(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_board_in_the_repository_reads_the_same(board: Path) -> None:
    try:
        text = board.read_text("utf-8")
    except UnicodeDecodeError:
        pytest.skip("not UTF-8: refused before parsing, by both paths")
    assert_same(text)


def test_clean_examples_take_the_fast_path() -> None:
    for board in sorted(ROOT.glob("examples/*/board.yaml")):
        assert fast_path_taken(board.read_text("utf-8")), board


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key
        "a: !foo x\n",  # a tag
        "a: &x [1]\nb: *x\n",  # an alias of a list
        "%YAML 1.1\n---\na: yes\n",  # a directive that changes how scalars read
        "a: [1, 2\n",  # a syntax error
        "a: {{ vars.place }}\n",  # an unquoted template
    ],
)
def test_problems_are_left_to_the_reference_path(text: str) -> None:
    assert not fast_path_taken(text)
    assert_same(text)


# --- generated boards -----------------------------------------------------------------------

scalar_text = st.one_of(
    st.sampled_from(PLAIN_WORDS),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def _render_scalar(value: str, style: str) -> str:
    if style == "double":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    return value


@st.composite
def yaml_documents(draw: st.DrawFn) -> str:
    lines = ["version: 1"]
    for i in range(draw(st.integers(0, 6))):
        value = draw(scalar_text)
        style = draw(st.sampled_from(["plain", "double", "single"]))
        shape = draw(st.sampled_from(["scalar", "list", "flow", "block"]))
        key = f"k{i}"
        if shape == "scalar":
            lines.append(f"{key}: {_render_scalar(value, style)}")
        elif shape == "list":
            lines += [f"{key}:", f"  - {_render_scalar(value, style)}", f"  - {{id: s{i}, duration: {i}}}"]
        elif shape == "flow":
            lines.append(f"{key}: [{_render_scalar(value, style)}, {i}]")
        else:
            lines += [f"{key}: |", f"  {value.strip() or 'x'}", "  more"]
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_documents())
def test_generated_documents_read_the_same(text: str) -> None:
    assert_same(text)


def test_without_the_c_extension_every_board_takes_the_reference_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform without PyYAML's wheels: slower, the same result."""
    import sys

    monkeypatch.setitem(sys.modules, "yaml._yaml", None)  # `from yaml._yaml import CParser` raises ImportError
    monkeypatch.setattr(source, "_FAST", None)
    text = (ROOT / "examples" / "elephant" / "board.yaml").read_text("utf-8")
    assert not fast_path_taken(text)
    diags = Diagnostics("b.yaml")
    doc = parse(text, Path("/tmp/b.yaml"), diags)
    assert doc is not None and doc.data["version"] == 1 and not diags.has_errors
    monkeypatch.setattr(source, "_FAST", None)  # the next test finds the extension again
