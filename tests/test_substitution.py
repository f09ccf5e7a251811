"""Texts that only insert variables render without Jinja, exactly as the sandbox renders them."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storyc.compile import sandbox
from storyc.compile.templates import _MAX_SUBSTITUTED, _compile, substitute

CONTEXT: dict[str, Any] = {
    "vars": {"place": "the old hall", "n": 3, "ratio": 1.5, "on": True, "nothing": None, "items": "shadowed", "x": {}},
    "scene": {"id": "meet", "duration": 5, "shots": [{"prompt": "a"}]},
    "characters": {"ellie": {"name": "ellie", "ref": "@ellie"}},
    "true": "a variable named like a constant",
}


def jinja(source: str) -> str | None:
    try:
        return sandbox.render(_compile(source), CONTEXT)
    except Exception:
        return None


def test_substitutions_render_like_jinja() -> None:
    assert substitute("walks to {{ vars.place }} at {{scene.id}}", CONTEXT) == "walks to the old hall at meet"
    assert substitute("{{ vars.n }} {{ vars.ratio }} {{ vars.on }}", CONTEXT) == "3 1.5 True"
    assert substitute("no Jinja at all", CONTEXT) == "no Jinja at all"


def test_anything_else_is_left_to_jinja() -> None:
    for source in (
        "{{ vars.place | upper }}",  # a filter
        "{% if vars.on %}x{% endif %}",  # a block
        "{# a comment #}",
        "{{- vars.place }}",  # whitespace control
        "{{ vars.missing }}",  # an error Jinja reports, with its line
        "{{ vars.items }}",  # the dict's method, in the sandbox
        "{{ vars.nothing }}",  # None
        "{{ vars.x }}",  # a mapping
        "{{ scene.shots }}",  # a list
        "{{ true }}",  # a constant, not the variable
        "{{ range }}",  # a global
        "a\r\nb {{ vars.place }}",  # Jinja normalises line ends
        "{{ vars['place'] }}",
        "{{{vars.place}}",  # Jinja's tag starts at the first brace (found by the property below)
    ):
        assert substitute(source, CONTEXT) is None, source


def test_the_size_bound_is_the_sandboxs() -> None:
    assert sandbox.MAX_TEXT == _MAX_SUBSTITUTED


names = st.sampled_from(
    ["vars.place", "vars.n", "vars.ratio", "vars.on", "vars.nothing", "vars.items", "vars.missing", "scene.id",
     "scene.duration", "scene.shots", "characters.ellie.ref", "characters.ellie", "true", "none", "range", "x"]
)  # fmt: skip
literal = st.text(st.sampled_from(list("ab {}%#-|\n\t'\"")), max_size=8)
pieces = st.lists(
    st.one_of(literal, st.builds(lambda n, a, b: f"{{{{{a}{n}{b}}}}}", names, st.sampled_from(["", " ", "  ", "\t"]),
                                 st.sampled_from(["", " ", "\t"]))),
    max_size=6,
)  # fmt: skip


@settings(max_examples=int(os.environ.get("STORYC_EXAMPLES", "400")), deadline=None)
@given(pieces)
def test_whenever_it_answers_it_answers_as_jinja(parts: list[str]) -> None:
    source = "".join(parts)
    fast = substitute(source, CONTEXT)
    if fast is not None:
        assert fast.strip() == (jinja(source) or "").strip() and jinja(source) is not None, source
