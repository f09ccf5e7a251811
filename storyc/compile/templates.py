"""Stage 3, template: every text field of a scene rendered through Jinja2.

Rendering happens in an immutable, bounded sandbox (`storyc.compile.sandbox`) with
`StrictUndefined`: a storyboard from an untrusted branch can't reach Python
internals, can't change what another scene sees, can't exhaust memory or time,
and a typo in a variable is an error, never a silently empty prompt.  Errors
point at the YAML line holding the template (or at the template file).

Structured fields are laid out by the built-in template `default`, in the
order of fal's "Default prompt template" for this endpoint.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from storyc.compile.model import Scene, Shot, Still, Storyboard, TemplateDef, Text
from storyc.compile.source import JsonPath, SourceDoc, display_path, locate_in_text
from storyc.compile.validate import CONTROL_CHARACTER, DEFAULT_TEMPLATE, control_name
from storyc.diagnostics import CONTROL_CHAR, TEMPLATE_SYNTAX, UNDEFINED_VARIABLE, Diagnostics, Loc, Rule

# Section labels of the seed's default prompt template, in its order.
DEFAULT_SECTIONS = (
    ("scene", "Scene"),
    ("subjects", "Subjects"),
    ("style", "Style references"),
    ("camera", "Camera"),
    ("details", "Important details"),
    ("audio", "Audio"),
    ("constraints", "Constraints"),
)

_JINJA_MARKERS = ("{{", "{%", "{#")


@dataclass(frozen=True, slots=True)
class RenderedText:
    text: str
    origin: JsonPath  # the YAML node to blame for what is in it


@dataclass(frozen=True)
class RenderedScene:
    scene: Scene
    fields: tuple[RenderedText, ...]  # every text field on its own, for locating references
    prompt: RenderedText | None  # the whole prompt of a single-prompt scene
    shots: tuple[RenderedText, ...]  # the shot prompts of a multi-shot scene


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import StrictUndefined

    from storyc.compile.sandbox import BoundedSandbox

    return BoundedSandbox(
        undefined=StrictUndefined,
        autoescape=False,  # the output is prompt text, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=4096)
def _compile(source: str) -> Any:
    return environment().from_string(source)


def render_scenes(board: Storyboard, diags: Diagnostics) -> list[RenderedScene]:
    renderer = _Renderer(board, diags)
    results = (renderer.scene(s) for s in board.scenes)
    return [r for r in results if r is not None]


def render_stills(board: Storyboard, diags: Diagnostics) -> dict[str, RenderedText]:
    """Each still's prompt through the same sandbox; a template sees `still` (its own fields as written)."""
    renderer = _Renderer(board, diags)
    results = ((name, renderer.still(still)) for name, still in board.stills.items())
    return {name: rendered for name, rendered in results if rendered is not None}


def _loop_info(index: int, length: int) -> dict[str, Any]:
    return {
        "index": index + 1,
        "index0": index,
        "revindex": length - index,
        "revindex0": length - index - 1,
        "first": index == 0,
        "last": index == length - 1,
        "length": length,
    }


class _Renderer:
    def __init__(self, board: Storyboard, diags: Diagnostics) -> None:
        self.board = board
        self.doc: SourceDoc = board.doc
        self.diags = diags
        self.base_context: dict[str, Any] = {
            "vars": board.vars,
            "characters": {
                n: {"name": n, "description": c.description or "", "ref": f"@{n}", "kind": "character"}
                for n, c in board.characters.items()
            },
            "styles": {
                n: {"name": n, "description": s.description or "", "ref": f"@{n}", "kind": "style"}
                for n, s in board.styles.items()
            },
        }

    def scene(self, scene: Scene) -> RenderedScene | None:
        errors_before = self.diags.error_count
        context = {**self.base_context, "scene": scene.raw}
        if scene.has_errors:
            return self._texts_only(scene, context)
        if scene.shots:
            return self._multi_shot(scene, context, errors_before)
        fields: list[RenderedText] = []
        values: dict[str, Any] = {}
        texts = [scene.prompt] if scene.prompt else list(scene.fields.values())
        for text in texts:
            rendered = self._field(text, context)
            fields.append(rendered)
            values[str(text.path[-1])] = rendered.text
        constraints = [self._field(c, context) for c in scene.constraints]
        fields += constraints
        if scene.constraints:
            values["constraints"] = [c.text for c in constraints]
        if self._failed(errors_before):
            return None
        prompt = self._layout(scene, values)
        if prompt is None or self._failed(errors_before):
            return None
        return RenderedScene(scene, tuple(fields), prompt, ())

    def still(self, still: Still) -> RenderedText | None:
        errors_before = self.diags.error_count
        rendered = self._field(still.prompt, {**self.base_context, "still": still.raw})
        return None if self._failed(errors_before) else rendered

    def _texts_only(self, scene: Scene, context: dict[str, Any]) -> RenderedScene:
        """A scene with problems: its own texts are rendered, for their own problems; nothing is laid out."""
        texts = [t for t in (scene.prompt, *scene.fields.values(), *scene.constraints) if t is not None]
        fields = [self._field(t, context) for t in texts]
        fields += [self._field(shot.prompt, self._shot_context(scene, shot, context)) for shot in scene.shots]
        return RenderedScene(scene, tuple(fields), None, ())

    @staticmethod
    def _shot_context(scene: Scene, shot: Shot, context: dict[str, Any]) -> dict[str, Any]:
        index = int(shot.path[-1])  # its place among the shots as written
        written = scene.raw["shots"]
        return {**context, "shot": written[index], "loop": _loop_info(index, len(written))}

    def _multi_shot(self, scene: Scene, context: dict[str, Any], errors_before: int) -> RenderedScene | None:
        shots: list[RenderedText] = []
        fields: list[RenderedText] = []
        template = self.board.templates.get(scene.shot_template or "")
        for shot in scene.shots:
            shot_context = self._shot_context(scene, shot, context)
            raw_shot = shot_context["shot"]
            rendered = self._field(shot.prompt, shot_context)
            fields.append(rendered)
            if template is not None:
                shot_values = {**raw_shot, "prompt": rendered.text, "number": shot_context["loop"]["index"]}
                text = self._template(template, {**shot_context, "shot": shot_values}, (*scene.path, "shot_template"))
                rendered = RenderedText(text or "", template.path if template.file is None else shot.prompt.path)
            shots.append(rendered)
        if self._failed(errors_before):
            return None
        return RenderedScene(scene, tuple(fields), None, tuple(shots))

    def _failed(self, errors_before: int) -> bool:
        return self.diags.error_count > errors_before

    def _layout(self, scene: Scene, values: dict[str, Any]) -> RenderedText | None:
        if scene.prompt is not None and scene.template is None:
            return RenderedText(values["prompt"], scene.prompt.path)
        name = scene.template or DEFAULT_TEMPLATE
        template = self.board.templates.get(name)
        if template is None:  # the built-in default
            return RenderedText(default_layout(values, scene.generate_audio), scene.path)
        context = {**self.base_context, "scene": {**scene.raw, **values}}
        text = self._template(template, context, (*scene.path, "template") if scene.template else scene.path)
        return None if text is None else RenderedText(text, scene.path)

    def _field(self, text: Text, context: dict[str, Any]) -> RenderedText:
        if not any(m in text.value for m in _JINJA_MARKERS):
            return RenderedText(text.value.strip(), text.path)  # fast path: no Jinja in it
        rendered = self._render(text.value, context, lambda line: self._field_loc(text.path, line), None, text.path)
        if rendered is not None:
            rendered = self._without_controls(rendered, text.value, text.path)
        return RenderedText(rendered if rendered is not None else "", text.path)

    def _template(self, template: TemplateDef, context: dict[str, Any], use: JsonPath) -> str | None:
        """A named template's text (`use`: where the scene names it), or None after reporting why not."""
        if template.file is not None:
            file_display = display_path(template.file)
            text = self._render(template.source, context, lambda line: Loc(line, 1), file_display, None)
        else:
            loc_of = partial(self._field_loc, template.path)
            text = self._render(template.source, context, loc_of, None, template.path)
        return None if text is None else self._without_controls(text, template.source, use)

    def _without_controls(self, text: str, source: str, use: JsonPath) -> str | None:
        """The rendered text, or None after reporting a control character a template wrote into it.

        Validation refused one written in the template itself; this one came in
        with a value the template inserts (`vars:`, a description, an escape in
        template code): it is reported where the template is used.
        """
        found = CONTROL_CHARACTER.search(text)
        if found is None or CONTROL_CHARACTER.search(source):  # none, or reported as written
            return text
        self.diags.error(
            CONTROL_CHAR,
            self.doc.loc(use),
            f"the template writes control character {control_name(found.group())} into the prompt, "
            "from a value it inserts (vars, a description); remove it there",
        )
        return None

    def _render(
        self, source: str, context: dict[str, Any], loc_of: Any, file: str | None, node: JsonPath | None
    ) -> str | None:
        """The rendered text, or None after reporting why not (`node`: the YAML scalar holding `source`)."""
        from storyc.compile import sandbox

        substituted = substitute(source, context)
        if substituted is not None:
            return substituted.strip()
        try:
            return sandbox.render(_compile(source), context).strip()
        except Exception as exc:  # any failure of user template code is a diagnostic
            line = _error_line(exc)
            if node is not None:
                line = self._line_as_written(node, context) or line
            problem = _explain(exc, context, source)
            self._error(problem, file, self._name_loc(problem, file, node, source) or loc_of(line))
        return None

    def _name_loc(self, problem: TemplateProblem, file: str | None, node: JsonPath | None, source: str) -> Loc | None:
        """Where the name a problem is about is written: in the template file, or in the YAML scalar."""
        if problem.name is None:
            return None
        needle = f".{problem.name}" if problem.attribute else problem.name
        found = locate_in_text(source, needle) if file is not None else None
        if file is None and node is not None:
            found = self.doc.find_in_scalar(node, needle)
        if found is None or not problem.attribute:
            return found
        return Loc(found.line, found.col + 1)  # past the '.'

    def _line_as_written(self, node: JsonPath, context: dict[str, Any]) -> int | None:
        """For a `>` block, the template line of the error in the block as written.

        Folding joins the block's lines, so Jinja's line numbers count folded
        lines.  The same template with its line breaks kept fails at the same
        place, on the line where the user wrote it.
        """
        span = self.doc.spans.get(node)
        if span is None or not self.doc.text.startswith(">", span.start):
            return None
        _header, _, kept = self.doc.text[span.start : span.end].partition("\n")
        from storyc.compile import sandbox

        try:
            sandbox.render(environment().from_string(kept), context)
        except Exception as exc:  # the same failure, now with the right line
            return _error_line(exc)
        return None

    def _error(self, problem: TemplateProblem, file: str | None, loc: Loc) -> None:
        width = len(problem.name or "")
        if file is None:
            self.diags.error(problem.rule, loc, problem.message, help=problem.help, width=width)
        else:
            self.diags.error_in(problem.rule, file, loc, problem.message, help=problem.help, width=width)

    def _field_loc(self, path: JsonPath, template_line: int) -> Loc:
        """Map line N of a template held in a YAML scalar to the file's line."""
        start = self.doc.loc(path)
        span = self.doc.spans.get(path)
        if span is None:
            return start
        source = self.doc.text[span.start : span.end]
        block = source[:1] in ("|", ">")
        line = start.line + template_line - 1 + (1 if block else 0)
        if template_line == 1 and not block:
            return start
        lines = self.doc.text.splitlines()
        if 0 < line <= len(lines):
            text_line = lines[line - 1]
            return Loc(line, len(text_line) - len(text_line.lstrip()) + 1)
        return start


# `{{ vars.place }}`, `{{scene.id}}`: a name and attributes, nothing else (no filter, no whitespace control).
_SUBSTITUTION = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*\}\}")
# Names Jinja reads as constants, not as variables.
_JINJA_CONSTANTS = frozenset({"true", "false", "none", "True", "False", "None"})
_MISSING = object()


def substitute(source: str, context: dict[str, Any]) -> str | None:
    """Jinja's output for a text whose only Jinja is `{{ name.attr... }}`, without compiling a template.

    Most templated prompts only insert a variable (`{{ vars.place }}`); compiling a Jinja template for
    each costs far more than the lookup.  The result is exactly what the sandbox would render
    (a property test holds it to that); None for anything else (a filter, a block, a missing name, a
    value that is not plain text or a number...), which then goes through Jinja as before, with its
    errors and limits.
    """
    if "{%" in source or "{#" in source or "\r" in source:
        return None
    parts: list[str] = []
    position = 0
    size = 0
    for match in _SUBSTITUTION.finditer(source):
        if match.start() and source[match.start() - 1] == "{":
            return None  # `{{{ x }}`: Jinja's tag starts one brace earlier, and reads it otherwise
        value = _plain_value(context, match.group(1))
        if value is None:
            return None
        parts += (source[position : match.start()], value)
        size += len(value)
        position = match.end()
    parts.append(source[position:])
    if any("{{" in literal for literal in parts[::2]) or size > _MAX_SUBSTITUTED:
        return None  # other Jinja syntax, or output the sandbox would bound: Jinja decides
    return "".join(parts)


_MAX_SUBSTITUTED = 65_536  # sandbox.MAX_TEXT, not imported: importing the sandbox imports Jinja


def _plain_value(context: dict[str, Any], dotted: str) -> str | None:
    """`str()` of the value at a dotted name, as Jinja prints it; None unless a plain lookup of text or a number."""
    first, *attributes = dotted.split(".")
    if first in _JINJA_CONSTANTS:
        return None
    value = context.get(first, _MISSING)
    for attribute in attributes:
        # The sandbox looks an attribute up before a key (`vars.items` is the dict's method): only keys
        # that are no attribute of the value are plain lookups.
        if not isinstance(value, dict) or attribute not in value or hasattr(value, attribute):
            return None
        value = value[attribute]
    if value is _MISSING or type(value) not in (str, int, float, bool):
        return None
    return str(value)


def _error_line(exc: Exception) -> int:
    from jinja2 import TemplateSyntaxError

    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno or 1
    return _template_line(exc)


@dataclass(frozen=True)
class TemplateProblem:
    """Why a template failed, in storyc's words; `name`: the variable (or, `attribute`, the `.name`) at fault."""

    rule: Rule
    message: str
    name: str | None = None
    attribute: bool = False
    help: tuple[str, ...] = ()


def _explain(exc: Exception, context: dict[str, Any], source: str) -> TemplateProblem:
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    from storyc.compile.sandbox import TooExpensive, UnsupportedTag

    if isinstance(exc, UndefinedError):
        return _undefined(exc, context, source)
    if isinstance(exc, TooExpensive):
        return TemplateProblem(TEMPLATE_SYNTAX, f"template too expensive: {exc}")
    if isinstance(exc, UnsupportedTag):
        return TemplateProblem(TEMPLATE_SYNTAX, f"template: {exc.message}")
    if isinstance(exc, RecursionError):
        limit = sys.getrecursionlimit()
        return TemplateProblem(
            TEMPLATE_SYNTAX, f"template nests too deeply: Python's recursion limit ({limit}) was reached"
        )
    if isinstance(exc, IndentationError) and exc.filename == "<template>":
        return TemplateProblem(
            TEMPLATE_SYNTAX, "template nests too deeply: its blocks go more than 100 levels deep (Python's limit)"
        )
    if isinstance(exc, TemplateSyntaxError):
        return TemplateProblem(TEMPLATE_SYNTAX, f"template syntax error: {exc.message}")
    if isinstance(exc, SecurityError):
        return TemplateProblem(TEMPLATE_SYNTAX, f"template: not allowed in a sandboxed template: {exc}")
    return TemplateProblem(TEMPLATE_SYNTAX, f"template failed: {type(exc).__name__}: {exc}")


def _template_line(exc: BaseException) -> int:
    """The template line an exception was raised at, from Jinja's rewritten traceback."""
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']*)'")
_IS_UNDEFINED = re.compile(r"^'([^']*)' is undefined$")
_DOTTED = r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"


def _undefined(exc: Exception, context: dict[str, Any], source: str) -> TemplateProblem:
    """`undefined variable: no 'plac' in vars (did you mean 'place'?)`, not Jinja's `'dict object' has no ...`."""
    from storyc.diagnostics import closest, did_you_mean

    message = str(exc)
    attribute = _NO_ATTRIBUTE.search(message)
    if attribute is not None:
        missing = attribute.group(1)
        parent = re.search(_DOTTED + r"\." + re.escape(missing) + r"(?![A-Za-z0-9_])", source)
        owner = _lookup(context, parent.group(1)) if parent else None
        names = [str(k) for k in owner] if isinstance(owner, dict) else _names_in(context)
        where = f" in {parent.group(1)}" if parent else ""
        text = f"undefined variable: no '{missing}'{where}{did_you_mean(missing, names)}"
        meant = closest(missing, names)
        fix = (f"write '{parent.group(1)}.{meant}'" if parent else f"write '{meant}'",) if meant else ()
        return TemplateProblem(UNDEFINED_VARIABLE, text, missing, attribute=True, help=fix)
    variable = _IS_UNDEFINED.match(message)
    if variable is not None:
        missing = variable.group(1)
        text = f"undefined variable: no '{missing}'{did_you_mean(missing, _names_in(context))}"
        meant = closest(missing, _names_in(context))
        return TemplateProblem(UNDEFINED_VARIABLE, text, missing, help=(f"write '{meant}'",) if meant else ())
    return TemplateProblem(UNDEFINED_VARIABLE, f"undefined variable: {message}")


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _names_in(context: dict[str, Any]) -> list[str]:
    """Every name a template can reach in one step or two: `vars.place`, `scene.camera`, `characters.ellie`."""
    names = list(context)
    for value in context.values():
        if isinstance(value, dict):
            names.extend(str(k) for k in value)
    return names


def default_layout(values: dict[str, Any], generate_audio: bool) -> str:
    """The built-in `default` template: the seed's sections, empty ones left out."""
    parts: list[str] = []
    for key, label in DEFAULT_SECTIONS:
        value = values.get(key)
        if key == "audio" and not generate_audio:
            continue
        if isinstance(value, list):
            value = ", ".join(v for v in value if v)
        if value:
            parts.append(f"{label}: {value}")
    return "\n\n".join(parts)
