"""Stage 2, validate: `SourceDoc` -> `Storyboard`.

First the JSON Schema (draft 2020-12, `schemas/storyboard.schema.json`), with
each error turned into a plain sentence at the offending node; then the rules
a schema can't say well (prompt xor shots xor structured fields, shot sums,
names, templates).  An entity with schema errors is skipped, not fatal, so the
rest of the board is still checked and every problem is reported at once.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from storyc import endpoints
from storyc.diagnostics import Diagnostics, did_you_mean
from storyc.model import (
    STRUCTURED_FIELDS,
    AssetRef,
    Character,
    Scene,
    Shot,
    Storyboard,
    Style,
    TemplateDef,
    Text,
)
from storyc.resources import storyboard_schema_path
from storyc.source import JsonPath, SourceDoc

RESERVED_NAME = re.compile(r"^(Element|Image|Video)\d+$")
TEMPLATE_FILE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".txt", ".tmpl")
DEFAULT_TEMPLATE = "default"

_JSON_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


@cache
def storyboard_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(storyboard_schema_path().read_text("utf-8"))
    return schema


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(storyboard_schema())


def find_project_root(start: Path) -> Path:
    """The enclosing git work tree, else the storyboard's own folder."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def validate(doc: SourceDoc, diags: Diagnostics) -> Storyboard | None:
    data = doc.data
    if not isinstance(data, dict):
        diags.error(doc.loc(()), "a storyboard is a mapping with 'version' and 'scenes'")
        return None
    bad = _schema_errors(doc, diags)
    if () in bad or ("scenes",) in bad or ("version",) in bad:
        return None
    return _Builder(doc, diags, bad).build()


# --- JSON Schema errors as sentences -------------------------------------------------


def _schema_errors(doc: SourceDoc, diags: Diagnostics) -> set[JsonPath]:
    """Report schema errors; return the paths of the entities that have them."""
    bad: set[JsonPath] = set()
    for error in _validator().iter_errors(doc.data):
        for path in _report(doc, diags, error):
            bad.add(_entity(path))
    return bad


def _entity(path: JsonPath) -> JsonPath:
    """The entity an error belongs to: ('scenes', 3), ('characters', 'ellie'), ..."""
    if path and path[0] in ("scenes", "characters", "styles", "templates") and len(path) > 1:
        return path[:2]
    return path[:1]


def _report(doc: SourceDoc, diags: Diagnostics, error: Any) -> list[JsonPath]:
    path: JsonPath = tuple(error.absolute_path)
    kind = error.validator
    instance = error.instance
    where = describe(doc.data, path)
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        paths = []
        for key in sorted(set(instance) - set(allowed)):
            key_path = (*path, key)
            diags.error(doc.key_loc(key_path), f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}")
            paths.append(key_path)
        return paths
    if kind == "required":
        missing = [k for k in error.validator_value if k not in instance]
        for key in missing:
            diags.error(doc.loc(path), f"{where}: missing required key '{key}'")
        return [path]
    if kind == "propertyNames":
        name = instance
        name_path = (*path, name)
        diags.error(
            doc.key_loc(name_path),
            f"{where}: '{name}' is not a valid name: use a letter, then letters, digits or '_'",
        )
        return [name_path]
    if kind in ("oneOf", "anyOf"):
        return _report_alternatives(doc, diags, error, path, where)
    diags.error(doc.loc(path), f"{where}: {_sentence(error)}")
    return [path]


def _report_alternatives(doc: SourceDoc, diags: Diagnostics, error: Any, path: JsonPath, where: str) -> list[JsonPath]:
    """For `oneOf`, report the errors of the alternative whose type fits the value."""
    fitting = [
        sub for sub in error.context if sub.validator != "type" and sub.relative_schema_path[0] in ("oneOf", "anyOf")
    ]
    branches = {sub.relative_schema_path[1] for sub in fitting}
    if len(branches) == 1:
        reported: list[JsonPath] = []
        for sub in fitting:
            reported += _report(doc, diags, sub)
        return reported
    options = [_JSON_TYPES.get(s.get("type", ""), "") for s in error.validator_value]
    expected = " or ".join(o for o in options if o) or "a different value"
    diags.error(doc.loc(path), f"{where}: expected {expected}, got {_kind_of(error.instance)}")
    return [path]


def _sentence(error: Any) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        types = [value] if isinstance(value, str) else value
        expected = " or ".join(_JSON_TYPES.get(t, t) for t in types)
        hint = ""
        if "integer" in types and isinstance(instance, str) and instance.strip().isdigit():
            hint = f" (write {instance.strip()} without quotes)"
        return f"expected {expected}, got {_kind_of(instance)}{hint}"
    if kind == "enum":
        options = ", ".join(json.dumps(v) for v in value)
        dym = did_you_mean(str(instance), [str(v) for v in value])
        return f"{json.dumps(instance)} is not one of {options}{dym}"
    if kind == "const":
        return f"must be {json.dumps(value)}, got {json.dumps(instance)}"
    if kind == "minimum":
        return f"must be at least {value}, got {instance}"
    if kind == "maximum":
        return f"must be at most {value}, got {instance}"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"needs at least {value} items, got {len(instance)}"
    if kind == "maxItems":
        return f"has {len(instance)} items; at most {value} are allowed"
    if kind == "minLength":
        return "must not be empty"
    if kind == "uniqueItems":
        return "lists the same name twice"
    if kind == "pattern":
        return f"{json.dumps(instance)} is not valid here ({error.schema.get('description', value)})"
    return str(error.message)


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {json.dumps(value)}" if len(value) < 40 else "text"
    return f"{type(value).__name__} {value}"


def describe(data: Any, path: JsonPath) -> str:
    """A readable name for a node: `scene 'meet' duration`, `character 'ellie' frontal`."""
    if not path:
        return "storyboard"
    parts: list[str] = []
    rest = path
    if path[0] == "scenes" and len(path) > 1 and isinstance(path[1], int):
        scene = _get(data, path[:2])
        sid = scene.get("id") if isinstance(scene, dict) else None
        parts.append(f"scene '{sid}'" if isinstance(sid, str) else f"scene #{path[1] + 1}")
        rest = path[2:]
    elif path[0] in ("characters", "styles", "templates") and len(path) > 1:
        parts.append(f"{path[0][:-1]} '{path[1]}'")
        rest = path[2:]
    text = ""
    for p in rest:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    if text:
        parts.append(text)
    return " ".join(parts)


def _get(data: Any, path: JsonPath) -> Any:
    for p in path:
        data = data[p]
    return data


# --- building the typed storyboard, with the rules beyond the schema ------------------


class _Builder:
    def __init__(self, doc: SourceDoc, diags: Diagnostics, bad: set[JsonPath]) -> None:
        self.doc = doc
        self.diags = diags
        self.bad = bad
        self.data: dict[str, Any] = doc.data
        self.target: dict[str, Any] = {} if ("target",) in bad else self.data.get("target") or {}

    def build(self) -> Storyboard:
        characters = self._characters()
        styles = self._styles()
        self._check_names(characters, styles)
        templates = self._templates()
        scenes = self._scenes(characters, styles, templates)
        return Storyboard(
            doc=self.doc,
            root=find_project_root(self.doc.path.parent),
            title=self.data.get("title") or self.doc.path.stem,
            vars=self.data.get("vars") or {},
            characters=characters,
            styles=styles,
            templates=templates,
            scenes=tuple(scenes),
            broken_names=frozenset(self._declared_names() - characters.keys() - styles.keys()),
        )

    def _declared_names(self) -> set[str]:
        names: set[str] = set()
        for table in ("characters", "styles"):
            declared = self.data.get(table)
            if isinstance(declared, dict):
                names.update(str(n) for n in declared)
        return names

    def _ok(self, path: JsonPath) -> bool:
        return path not in self.bad

    def _asset(self, value: Any, path: JsonPath) -> AssetRef | None:
        return AssetRef(value, path) if isinstance(value, str) else None

    def _characters(self) -> dict[str, Character]:
        result: dict[str, Character] = {}
        for name, spec in (self.data.get("characters") or {}).items():
            path = ("characters", name)
            if not self._ok(path):
                continue
            character = Character(
                name=name,
                path=path,
                description=spec.get("description"),
                frontal=self._asset(spec.get("frontal"), (*path, "frontal")),
                references=tuple(
                    AssetRef(v, (*path, "references", i)) for i, v in enumerate(spec.get("references", []))
                ),
                video=self._asset(spec.get("video"), (*path, "video")),
                voice=spec.get("voice"),
            )
            if self._check_character(character):
                result[name] = character
        return result

    def _check_character(self, c: Character) -> bool:
        loc = self.doc.key_loc(c.path)
        if c.video and (c.frontal or c.references):
            self.diags.error(
                loc,
                f"character '{c.name}' has both a video and images: give either 'video' or 'frontal' + 'references'",
            )
            return False
        if c.video:
            return True
        if not c.frontal:
            what = "has references but no 'frontal' image" if c.references else "has no reference"
            self.diags.error(
                loc, f"character '{c.name}' {what}: give 'frontal' + 'references' (1 to 3 images), or 'video'"
            )
            return False
        if not c.references:
            self.diags.error(
                loc,
                f"character '{c.name}' needs 1 to 3 'references' (more angles) besides 'frontal', as the API requires",
            )
            return False
        return True

    def _styles(self) -> dict[str, Style]:
        result: dict[str, Style] = {}
        for name, spec in (self.data.get("styles") or {}).items():
            path = ("styles", name)
            if not self._ok(path):
                continue
            if isinstance(spec, str):
                result[name] = Style(name=name, path=path, image=AssetRef(spec, path))
            else:
                result[name] = Style(
                    name=name,
                    path=path,
                    image=AssetRef(spec["image"], (*path, "image")),
                    description=spec.get("description"),
                )
        return result

    def _check_names(self, characters: dict[str, Character], styles: dict[str, Style]) -> None:
        for name in characters.keys() & styles.keys():
            self.diags.error(
                self.doc.key_loc(("styles", name)),
                f"name '{name}' is already a character (line {self.doc.key_loc(('characters', name)).line}); "
                "characters and styles share one namespace",
            )
        for kind, table in (("character", characters), ("style", styles)):
            for name, ref in table.items():
                if RESERVED_NAME.match(name):
                    self.diags.error(
                        self.doc.key_loc(ref.path),
                        f"{kind} name '{name}' looks like a positional reference; pick a descriptive name",
                    )

    def _templates(self) -> dict[str, TemplateDef]:
        result: dict[str, TemplateDef] = {}
        for name, spec in (self.data.get("templates") or {}).items():
            path = ("templates", name)
            if not self._ok(path):
                continue
            template = self._template(name, spec, path)
            if template is not None:
                result[name] = template
        return result

    def _template(self, name: str, spec: Any, path: JsonPath) -> TemplateDef | None:
        if isinstance(spec, dict) and "text" in spec:
            return TemplateDef(name, spec["text"], (*path, "text"))
        if isinstance(spec, dict):
            file_value, node = spec["file"], (*path, "file")
        elif _looks_like_template_file(spec):
            file_value, node = spec, path
        else:
            return TemplateDef(name, spec, path)
        return self._template_file(name, file_value, node)

    def _template_file(self, name: str, value: str, node: JsonPath) -> TemplateDef | None:
        base = self.doc.path.parent
        root = find_project_root(base)
        target = (base / value).resolve()
        if not target.is_relative_to(root):
            self.diags.error(self.doc.loc(node), f"template file '{value}' resolves outside the project root ({root})")
            return None
        try:
            source = target.read_text("utf-8")
        except FileNotFoundError:
            self.diags.error(self.doc.loc(node), f"template file not found: {value}")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.diags.error(self.doc.loc(node), f"cannot read template file '{value}': {exc}")
            return None
        return TemplateDef(name, source, node, file=target)

    def _scenes(
        self,
        characters: dict[str, Character],
        styles: dict[str, Style],
        templates: dict[str, TemplateDef],
    ) -> list[Scene]:
        scenes: list[Scene] = []
        first_line: dict[str, int] = {}
        for index, raw in enumerate(self.data["scenes"]):
            path: JsonPath = ("scenes", index)
            sid = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(sid, str) and sid in first_line:
                self.diags.error(
                    self.doc.loc((*path, "id")), f"scene id '{sid}' is used twice (first at line {first_line[sid]})"
                )
                continue
            if isinstance(sid, str):
                first_line[sid] = self.doc.loc((*path, "id")).line
            if not self._ok(path):
                continue
            scene = self._scene(index, raw, path, characters, styles, templates)
            if scene is not None:
                scenes.append(scene)
        return scenes

    def _setting(self, raw: dict[str, Any], key: str, default: Any) -> Any:
        if key in raw:
            return raw[key]
        return self.target.get(key, default)

    def _scene(
        self,
        index: int,
        raw: dict[str, Any],
        path: JsonPath,
        characters: dict[str, Character],
        styles: dict[str, Style],
        templates: dict[str, TemplateDef],
    ) -> Scene | None:
        sid = raw["id"]
        ok = True
        endpoint = self._setting(raw, "endpoint", endpoints.DEFAULT_ENDPOINT)
        if endpoints.get(endpoint) is None:
            node = (*path, "endpoint") if "endpoint" in raw else ("target", "endpoint")
            known = list(endpoints.registry())
            self.diags.error(
                self.doc.loc(node),
                f"unknown endpoint '{endpoint}'{did_you_mean(endpoint, known)}; known: {', '.join(known)}",
            )
            # Go on checking the scene against the default endpoint, so its other
            # problems are reported too; the board won't compile either way.
            endpoint = endpoints.DEFAULT_ENDPOINT
        structured = [k for k in STRUCTURED_FIELDS if k in raw]
        given = [k for k in ("prompt", "shots") if k in raw] + (["structured fields"] if structured else [])
        if not given:
            self.diags.error(
                self.doc.loc(path),
                f"scene '{sid}' has no prompt: give 'prompt', 'shots', or structured fields "
                "(scene, subjects, style, camera, details, audio, constraints)",
            )
            ok = False
        elif len(given) > 1:
            detail = f"structured fields ({', '.join(structured)})" if structured else ""
            listed = ", ".join(detail if g == "structured fields" else f"'{g}'" for g in given)
            self.diags.error(self.doc.loc(path), f"scene '{sid}' has {listed}: give exactly one of them")
            ok = False
        shots = tuple(
            Shot(Text(s["prompt"], (*path, "shots", i, "prompt")), int(s["duration"]), (*path, "shots", i))
            for i, s in enumerate(raw.get("shots", []))
        )
        duration = raw.get("duration", None if shots else self.target.get("duration"))
        duration = int(duration) if duration is not None else None
        ok &= self._check_duration(sid, raw, path, shots, duration)
        ok &= self._check_templates(sid, raw, path, templates, bool(shots))
        with_names = tuple((n, (*path, "with", i)) for i, n in enumerate(raw.get("with", [])))
        for name, node in with_names:
            if name not in characters and name not in styles:
                self.diags.error(
                    self.doc.loc(node),
                    f"scene '{sid}': 'with' names unknown reference '{name}'"
                    + did_you_mean(name, [*characters, *styles]),
                )
                ok = False
        generate_audio = bool(self._setting(raw, "generate_audio", False))
        if "audio" in raw and not generate_audio:
            self.diags.warning(
                self.doc.key_loc((*path, "audio")),
                f"scene '{sid}': 'audio' is left out of the prompt because generate_audio is false",
            )
        if not ok:
            return None
        constraints = raw.get("constraints", [])
        constraint_texts = (
            (Text(constraints, (*path, "constraints")),)
            if isinstance(constraints, str)
            else tuple(Text(c, (*path, "constraints", i)) for i, c in enumerate(constraints))
        )
        return Scene(
            id=sid,
            index=index,
            path=path,
            raw=raw,
            endpoint=endpoint,
            aspect_ratio=self._setting(raw, "aspect_ratio", "16:9"),
            generate_audio=generate_audio,
            shot_type=self._setting(raw, "shot_type", "customize"),
            duration=duration,
            prompt=Text(raw["prompt"], (*path, "prompt")) if "prompt" in raw else None,
            fields={k: Text(raw[k], (*path, k)) for k in structured if k != "constraints"},
            constraints=constraint_texts,
            shots=shots,
            template=raw.get("template"),
            shot_template=raw.get("shot_template"),
            with_names=with_names,
            start_frame=self._asset(raw.get("start_frame"), (*path, "start_frame")),
            end_frame=self._asset(raw.get("end_frame"), (*path, "end_frame")),
        )

    def _check_duration(
        self, sid: str, raw: dict[str, Any], path: JsonPath, shots: tuple[Shot, ...], duration: int | None
    ) -> bool:
        if not shots:
            if duration is None:
                self.diags.error(
                    self.doc.loc(path),
                    f"scene '{sid}' has no duration: give 'duration' (3 to 15 seconds) or target.duration",
                )
                return False
            return True
        total = sum(s.duration for s in shots)
        if not 3 <= total <= 15:
            self.diags.error(
                self.doc.key_loc((*path, "shots")),
                f"scene '{sid}': shots add up to {total} s; a scene lasts 3 to 15 s",
            )
            return False
        if "duration" in raw and duration != total:
            self.diags.error(
                self.doc.loc((*path, "duration")),
                f"scene '{sid}': duration {duration} disagrees with its shots, which add up to {total} s "
                "(leave 'duration' out: it is the sum of the shots)",
            )
            return False
        return True

    def _check_templates(
        self, sid: str, raw: dict[str, Any], path: JsonPath, templates: dict[str, TemplateDef], has_shots: bool
    ) -> bool:
        ok = True
        known = [DEFAULT_TEMPLATE, *templates]
        for key in ("template", "shot_template"):
            name = raw.get(key)
            if name is None:
                continue
            if name not in known:
                self.diags.error(
                    self.doc.loc((*path, key)), f"scene '{sid}': unknown template '{name}'{did_you_mean(name, known)}"
                )
                ok = False
        if "template" in raw and has_shots:
            self.diags.error(
                self.doc.key_loc((*path, "template")),
                f"scene '{sid}' has shots: use 'shot_template' to lay out each shot",
            )
            ok = False
        if "shot_template" in raw and not has_shots:
            self.diags.error(
                self.doc.key_loc((*path, "shot_template")), f"scene '{sid}': 'shot_template' needs 'shots'"
            )
            ok = False
        return ok


def _looks_like_template_file(value: str) -> bool:
    return "\n" not in value and " " not in value and value.endswith(TEMPLATE_FILE_SUFFIXES)
