"""Stage 2, validate: `SourceDoc` -> `Storyboard`.

First the JSON Schema (draft 2020-12, `schemas/storyboard.schema.json`), with
each error turned into a plain sentence at the offending node; then the rules
a schema can't say well (prompt xor shots xor structured fields, shot sums,
names, templates).  A character, style or template with schema errors is
skipped, not fatal, and a scene with them is still checked in its sound parts
(its texts, references and assets), so every problem is reported at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from storyc.compile import endpoints, profiles
from storyc.compile.model import (
    STRUCTURED_FIELDS,
    UPSTREAM_KINDS,
    AssetRef,
    Character,
    ImageRef,
    Scene,
    Shot,
    Still,
    Storyboard,
    Style,
    TemplateDef,
    Text,
    Upstream,
)
from storyc.compile.names import skeleton
from storyc.compile.source import JsonPath, SourceDoc, display_path, locate_offset
from storyc.diagnostics import (
    AUDIO_IGNORED,
    BAD_NAME,
    BAD_VALUE,
    CHARACTER_IMAGES,
    CONTROL_CHAR,
    DUPLICATE_SCENE,
    DURATION,
    DURATION_MISMATCH,
    ENDPOINT_OVERRIDE,
    IMAGE_SOURCE,
    LOOKALIKE_NAMES,
    MISSING_KEY,
    NAME_CLASH,
    NOT_A_BOARD,
    PROMPT_FORM,
    TEMPLATE_FILE,
    TEMPLATE_USE,
    TOO_MANY_SHOTS,
    UNKNOWN_ENDPOINT,
    UNKNOWN_KEY,
    UNKNOWN_PROFILE,
    UNKNOWN_REFERENCE,
    Diagnostics,
    closest,
    did_you_mean,
    printable,
)
from storyc.files import NotARegularFile, read_text
from storyc.resources import storyboard_schema_path

RESERVED_NAME = re.compile(r"(Element|Image|Video)\d+")
TEMPLATE_FILE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".txt", ".tmpl")
DEFAULT_TEMPLATE = "default"
MAX_TEMPLATE_FILE_BYTES = 1024 * 1024  # a prompt is at most 2,500 characters; its template is far smaller

# Control characters but tab and line feed: the rest of C0, DEL and C1.  A YAML file can't hold
# them as they are (but NEL): they come from an escape ("\0", "\e", "\x07", "\N") or a template,
# and mean nothing in a prompt; fal would receive them as they are.  C1 controls (U+0080 to
# U+009F) are no characters anyone types: in text they are cp1252 bytes read as Latin-1 (a curly
# quote becomes U+0093), so they are refused with the rest.
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_C0_NAMES = (
    *("NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI"),
    *("DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"),
)


def control_name(char: str) -> str:
    """'U+0000 (NUL)', 'U+007F (DEL)', 'U+0093 (a C1 control; Windows-1252's '“' read as Latin-1?)'."""
    code = ord(char)
    if code < 0x20:
        return f"U+{code:04X} ({_C0_NAMES[code]})"
    if code == 0x7F:
        return "U+007F (DEL)"
    try:
        meant = f"; Windows-1252's '{bytes([code]).decode('cp1252')}' read as Latin-1?"
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: none in Windows-1252 either
        meant = ""
    return f"U+{code:04X} (a C1 control{meant})"


def control_in_text(char: str, what: str = "prompt text") -> str:
    return f"control character {control_name(char)} in {what}; delete it"


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
    from jsonschema import Draft202012Validator, validators

    # JSON Schema patterns are ECMA-262 regexes, where '$' ends the text; Python's '$' also matches
    # before a final newline, so "meet\n" would pass '^[A-Za-z0-9]...$' as a scene id.
    checker = validators.extend(Draft202012Validator, {"pattern": _pattern})
    return checker(storyboard_schema())


@cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """A schema pattern as Python reads it, with a final '$' meaning the end of the text, as in ECMA-262."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def validate(doc: SourceDoc, diags: Diagnostics, profile: str | None = None) -> Storyboard | None:
    """The storyboard as profile `profile` (None: the board's default) compiles it.

    Raises UnknownProfile when the board declares no such profile: a command-line mistake.
    """
    data = doc.data
    if not isinstance(data, dict):
        diags.error(NOT_A_BOARD, doc.loc(()), "a storyboard is a mapping with 'version' and 'scenes'")
        return None
    errors = _schema_errors(doc, diags)
    bad = {_entity(path) for path in errors}
    if () in bad or ("scenes",) in bad or ("version",) in bad:
        return None
    name = profiles.selected_name(data, profile, doc.display)
    return _Builder(doc, diags, bad, errors, name).build()


# --- JSON Schema errors as sentences -------------------------------------------------


@cache
def _surely_valid() -> Callable[[Any], bool]:
    from storyc.compile.schemacheck import checker

    return checker(storyboard_schema(), _ecma_regex) or (lambda data: False)


def _schema_errors(doc: SourceDoc, diags: Diagnostics) -> set[JsonPath]:
    """Report schema errors; return the paths of the nodes they were reported at."""
    if _surely_valid()(doc.data):  # most boards: no need for jsonschema's explanations
        return set()
    errors: set[JsonPath] = set()
    for error in _validator().iter_errors(doc.data):
        errors.update(_report(doc, diags, error))
    return errors


def _entity(path: JsonPath) -> JsonPath:
    """The entity an error belongs to: ('scenes', 3), ('characters', 'ellie'), ..."""
    if path and path[0] in ("scenes", "characters", "styles", "templates", "profiles", "stills") and len(path) > 1:
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
            match = closest(key, allowed)
            diags.error(
                UNKNOWN_KEY,
                doc.key_loc(key_path),
                f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}",
                help=(f"rename '{key}' to '{match}'",) if match else (),
            )
            paths.append(key_path)
        return paths
    if kind == "required":
        missing = [k for k in error.validator_value if k not in instance and not _misspelled(k, instance, error.schema)]
        for key in missing:
            diags.error(MISSING_KEY, doc.loc(path), f"{where}: missing required key '{key}'")
        return [path]
    if _is_property_name(error):
        name = instance
        name_path = (*path, name)
        diags.error(
            BAD_NAME,
            doc.key_loc(name_path),
            f"{where}: '{name}' is not a valid name: use a letter, then letters, digits or '_'",
        )
        return [name_path]
    if kind in ("oneOf", "anyOf"):
        return _report_alternatives(doc, diags, error, path, where)
    diags.error(BAD_VALUE, doc.loc(path), f"{where}: {_sentence(error)}")
    return [path]


def _seconds(value: Any) -> Any:
    """A duration written `8.0` is 8 seconds (the schema takes it as a whole number): sent as "8", not "8.0"."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _misspelled(key: str, instance: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether an unknown key of `instance` is `key` misspelled: 'promt' is reported once, as an unknown
    key that may be 'prompt', not also as 'prompt' missing."""
    if schema.get("additionalProperties") is not False:
        return False
    unknown = set(instance) - set(schema.get("properties", {}))
    return any(closest(u, [key]) == key for u in unknown)


def _is_property_name(error: Any) -> bool:
    # jsonschema reports a bad key as the keyword inside `propertyNames` ('pattern'), at the mapping
    schema_path = error.relative_schema_path
    return len(schema_path) >= 2 and schema_path[-2] == "propertyNames"


def _report_alternatives(doc: SourceDoc, diags: Diagnostics, error: Any, path: JsonPath, where: str) -> list[JsonPath]:
    """For `oneOf`, report the errors of the alternative that fits the value."""
    branch = _fitting_branch(error.context)
    if branch:
        reported: list[JsonPath] = []
        for sub in branch:
            reported += _report(doc, diags, sub)
        return reported
    options = dict.fromkeys(_JSON_TYPES.get(s.get("type", ""), "") for s in error.validator_value)
    expected = " or ".join(o for o in options if o) or "a different value"
    diags.error(BAD_VALUE, doc.loc(path), f"{where}: expected {expected}, got {_kind_of(error.instance)}")
    return [path]


def _fitting_branch(errors: list[Any]) -> list[Any]:
    """The errors of the alternative whose type fits the value; of several, the one closest to valid.

    An alternative of another type (a mapping where the value is text) says
    nothing useful: "expected a mapping" about a style path that is merely empty.
    """
    branches: dict[int, list[Any]] = {}
    misfits: set[int] = set()
    for sub in errors:
        index = sub.relative_schema_path[0]  # the alternative's position in `oneOf`
        branches.setdefault(index, []).append(sub)
        if sub.validator == "type" and not sub.relative_path:
            misfits.add(index)
    fitting = [subs for index, subs in sorted(branches.items()) if index not in misfits]
    return min(fitting, key=len, default=[])


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
    elif path[0] in ("characters", "styles", "templates", "stills") and len(path) > 1:
        parts.append(f"{path[0][:-1]} '{path[1]}'")
        rest = path[2:]
    text = ""
    for i, p in enumerate(rest):
        if isinstance(p, int):  # counted from 1, as people count: `shots[0]` is "shot 1"
            continue
        index = rest[i + 1] if i + 1 < len(rest) else None
        if isinstance(index, int):
            if text:
                parts.append(text)
            parts.append(f"{_singular(p)} {index + 1}")
            text = ""
        else:
            text += f".{p}" if text else p
    if text:
        parts.append(text)
    return " ".join(parts)


def _singular(key: str) -> str:
    """`shots` -> `shot`, `references` -> `reference`; a key not in the plural keeps its name (`with` -> `with`)."""
    return key[:-1] if key.endswith("s") else key


def _get(data: Any, path: JsonPath) -> Any:
    for p in path:
        data = data[p]
    return data


# --- building the typed storyboard, with the rules beyond the schema ------------------


class _Builder:
    def __init__(
        self, doc: SourceDoc, diags: Diagnostics, bad: set[JsonPath], errors: set[JsonPath], profile: str | None
    ) -> None:
        self.doc = doc
        self.diags = diags
        self.bad = bad  # entities with schema errors
        self.errors = errors  # the nodes those errors were reported at
        self.data: dict[str, Any] = doc.data
        tables: list[JsonPath] = [("target",), *(("profiles", n) for n in profiles.declared(self.data))]
        usable = {table for table in tables if table not in bad}
        # `target` with the selected profile's settings over it: the defaults every scene starts from
        self.profile = profiles.resolve(self.data, profile, usable)
        self.target: dict[str, Any] = self.profile.settings
        # Names declared under a misspelled top-level key (`charaters:`): reported as an
        # unknown key already, so a scene using one must not add "unknown reference" noise.
        self.stray_names = self._stray_names()
        self.broken_names: frozenset[str] = frozenset()
        self.declared_templates: set[str] = set()

    def build(self) -> Storyboard:
        characters = self._characters()
        styles = self._styles()
        self._check_names(characters, styles)
        templates = self._templates()
        # Declared, but with errors (reported): using one fails quietly, without "unknown" noise.
        self.broken_names = frozenset(self._declared_names() - characters.keys() - styles.keys())
        self.declared_templates = self._names_under("templates") | self.stray_names
        scenes = self._scenes(characters, styles, templates)
        stills = self._stills()
        self._check_default_profile()
        return Storyboard(
            doc=self.doc,
            root=self.doc.files.project_root(self.doc.path.parent),
            title=self.data.get("title") or self.doc.path.stem,
            vars=self.data.get("vars") or {},
            characters=characters,
            styles=styles,
            templates=templates,
            scenes=tuple(scenes),
            stills=stills,
            broken_stills=frozenset(self._names_under("stills") - stills.keys()),
            broken_names=self.broken_names,
            profile=self.profile.name,
            profiles=tuple(profiles.declared(self.data)),
            default_profile=profiles.default_name(self.data),
        )

    def _stills(self) -> dict[str, Still]:
        """The stills (`stills:`), each with the target's and profile's still settings under its own."""
        result: dict[str, Still] = {}
        for name, spec in self._table("stills").items():
            path: JsonPath = ("stills", name)
            if not self._ok(path):
                continue
            where: dict[str, JsonPath] = {}
            for key, default_key in (("endpoint", "still_endpoint"), ("resolution", "still_resolution")):
                if key in spec:
                    where[key] = (*path, key)
                elif default_key in self.profile.where:
                    where[key] = self.profile.where[default_key]
            variants = spec.get("variants", 1)
            pick = spec.get("pick", 1)
            if pick > variants:
                self.diags.error(
                    BAD_VALUE,
                    self.doc.loc((*path, "pick")),
                    f"still '{name}': pick {pick}, but it makes {variants} "
                    f"{'variant' if variants == 1 else 'variants'}: pick 1 to {variants}",
                )
                continue
            result[name] = Still(
                name=name,
                path=path,
                prompt=Text(spec["prompt"], (*path, "prompt")),
                endpoint=spec.get("endpoint", self.target.get("still_endpoint")),
                aspect_ratio=spec.get("aspect_ratio", self.target.get("aspect_ratio", "16:9")),
                resolution=spec.get("resolution", self.target.get("still_resolution")),
                variants=variants,
                pick=pick,
                with_names=tuple((n, (*path, "with", i)) for i, n in enumerate(spec.get("with", []))),
                raw=spec,
                where=where,
            )
        return result

    def _check_default_profile(self) -> None:
        chosen = self.data.get("default_profile")
        if not isinstance(chosen, str):
            return  # absent, or its schema error is reported
        names = profiles.declared(self.data)
        if chosen not in names:
            known = f"; profiles: {', '.join(names)}" if names else "; the board declares no `profiles:`"
            self.diags.error(
                UNKNOWN_PROFILE,
                self.doc.loc(("default_profile",)),
                f"default_profile '{chosen}' is not a profile{did_you_mean(chosen, names)}{known}",
            )

    def _declared_names(self) -> set[str]:
        return self._names_under("characters", "styles") | self.stray_names

    def _table(self, name: str) -> dict[str, Any]:
        """A top-level table of named entries; empty when it is not a mapping (its schema error is reported)."""
        table = self.data.get(name)
        return table if isinstance(table, dict) else {}

    def _names_under(self, *tables: str) -> set[str]:
        names: set[str] = set()
        for table in tables:
            declared = self.data.get(table)
            if isinstance(declared, dict):
                names.update(str(n) for n in declared)
        return names

    def _stray_names(self) -> set[str]:
        known = storyboard_schema()["properties"]
        return self._names_under(*(key for key in self.data if key not in known))

    def _ok(self, path: JsonPath) -> bool:
        return path not in self.bad

    def _default_reported(self, key: str) -> bool:
        """Whether the default a scene takes for `key` (target's, or the profile's) has a reported error."""
        tables: list[JsonPath] = [("target",)]
        if self.profile.name is not None:
            tables.append(("profiles", self.profile.name))
        return any(error[: len(table) + 1] == (*table, key) for table in tables for error in self.errors)

    def _clean(self, path: JsonPath) -> bool:
        """No schema error at `path` or inside it: checking it again would repeat or cascade."""
        if not self.errors or _entity(path) not in self.bad:
            return True  # the common case, without looking through the errors
        n = len(path)
        return not any(error[:n] == path for error in self.errors)

    def _asset(self, value: Any, path: JsonPath) -> AssetRef | None:
        return AssetRef(value, path) if isinstance(value, str) else None

    def _slot(self, value: Any, path: JsonPath) -> ImageRef | None:
        """An image slot: a file or URL, or `{still: NAME}` / `{last_frame_of: SCENE}` / `{first_frame_of: SCENE}`."""
        if not isinstance(value, dict):
            return self._asset(value, path)
        given = [k for k in UPSTREAM_KINDS if k in value]
        if len(given) != 1:  # the schema allows no other key
            if self._clean(path):
                listed = ", ".join(f"'{k}'" for k in given) if given else "none"
                self.diags.error(
                    IMAGE_SOURCE,
                    self.doc.loc(path),
                    f"{describe(self.data, path)}: give a file, an https URL, or exactly one of "
                    f"still, last_frame_of, first_frame_of (given: {listed})",
                )
            return None
        kind = given[0]
        name = value[kind]
        return Upstream(kind, name, path) if isinstance(name, str) else None

    def _characters(self) -> dict[str, Character]:
        result: dict[str, Character] = {}
        for name, spec in self._table("characters").items():
            path = ("characters", name)
            if not self._ok(path):
                continue
            character = Character(
                name=name,
                path=path,
                description=spec.get("description"),
                frontal=self._slot(spec.get("frontal"), (*path, "frontal")),
                references=tuple(
                    slot
                    for i, v in enumerate(spec.get("references", []))
                    if (slot := self._slot(v, (*path, "references", i))) is not None
                ),
                video=self._asset(spec.get("video"), (*path, "video")),
                voice=spec.get("voice"),
            )
            self._check_description(character)
            if character.voice is not None:  # sent as the element's voice_id
                self._check_text(Text(character.voice, (*path, "voice")), "a voice id")
            if spec.get("frontal") is not None and character.frontal is None:
                continue  # a frontal slot naming neither one step nor a file: reported, and nothing else to say
            if self._check_character(character):
                result[name] = character
        return result

    def _check_character(self, c: Character) -> bool:
        loc = self.doc.key_loc(c.path)
        if c.video and (c.frontal or c.references):
            self.diags.error(
                CHARACTER_IMAGES,
                loc,
                f"character '{c.name}' has both a video and images: give either 'video' or 'frontal' + 'references'",
            )
            return False
        if c.video:
            return True
        if not c.frontal:
            what = "has references but no 'frontal' image" if c.references else "has no reference"
            self.diags.error(
                CHARACTER_IMAGES,
                loc,
                f"character '{c.name}' {what}: give 'frontal' + 'references' (1 to 3 images), or 'video'",
            )
            return False
        if not c.references:
            self.diags.error(
                CHARACTER_IMAGES,
                loc,
                f"character '{c.name}' needs 1 to 3 'references' (more angles) besides 'frontal', as the API requires",
            )
            return False
        return True

    def _styles(self) -> dict[str, Style]:
        result: dict[str, Style] = {}
        for name, spec in self._table("styles").items():
            path = ("styles", name)
            if not self._ok(path):
                continue
            if isinstance(spec, str):
                result[name] = Style(name=name, path=path, image=AssetRef(spec, path))
                continue
            # `{image, description}`, or the short form of another step's output: `dawn: {still: palette}`
            image = self._slot(spec["image"], (*path, "image")) if "image" in spec else self._slot(spec, path)
            if image is not None:
                result[name] = Style(name=name, path=path, image=image, description=spec.get("description"))
                self._check_description(result[name])
        return result

    def _check_description(self, ref: Character | Style) -> None:
        """A description is prompt text (templates insert it); a control character in it is reported
        there, and the declaration is kept: its images are sound, and a template using it must not
        add "undefined" noise (what it writes into a prompt is reported at that use)."""
        if ref.description is not None:
            self._check_text(Text(ref.description, (*ref.path, "description")))

    def _check_text(self, text: Text, what: str = "prompt text") -> bool:
        """No control character (but tab and newline) in text that may reach fal; False after reporting one."""
        found = CONTROL_CHARACTER.search(text.value)
        if found is None:
            return True
        char = found.group()
        self.diags.error(
            CONTROL_CHAR, self.doc.find_char(text.path, char) or self.doc.loc(text.path), control_in_text(char, what)
        )
        return False

    def _check_names(self, characters: dict[str, Character], styles: dict[str, Style]) -> None:
        for name in characters.keys() & styles.keys():
            self.diags.error(
                NAME_CLASH,
                self.doc.key_loc(("styles", name)),
                f"name '{name}' is already a character (line {self.doc.key_loc(('characters', name)).line}); "
                "characters and styles share one namespace",
            )
        for kind, table in (("character", characters), ("style", styles)):
            for name, ref in table.items():
                if RESERVED_NAME.fullmatch(name):
                    self.diags.error(
                        NAME_CLASH,
                        self.doc.key_loc(ref.path),
                        f"{kind} name '{name}' looks like a positional reference; pick a descriptive name",
                    )
        self._check_lookalike_names([*characters.values(), *styles.values()])

    def _check_lookalike_names(self, declared: list[Character | Style]) -> None:
        """'ellie' and 'eIlie' (a capital I) read the same in a prompt: warn about the later one."""
        by_look: dict[str, Character | Style] = {}
        for ref in sorted(declared, key=lambda r: (self.doc.key_loc(r.path).line, self.doc.key_loc(r.path).col)):
            look = skeleton(ref.name)
            first = by_look.setdefault(look, ref)
            if first is not ref and first.name != ref.name:
                self.diags.warning(
                    LOOKALIKE_NAMES,
                    self.doc.key_loc(ref.path),
                    f"{ref.kind} name '{ref.name}' looks like {first.kind} '{first.name}' "
                    f"(line {self.doc.key_loc(first.path).line}); pick names that read differently",
                )

    def _templates(self) -> dict[str, TemplateDef]:
        result: dict[str, TemplateDef] = {}
        for name, spec in self._table("templates").items():
            path = ("templates", name)
            if not self._ok(path):
                continue
            template = self._template(name, spec, path)
            if template is not None:
                result[name] = template
        return result

    def _template(self, name: str, spec: Any, path: JsonPath) -> TemplateDef | None:
        """The template, or None after reporting why not (a scene using it then fails quietly)."""
        if isinstance(spec, dict) and "text" in spec:
            return self._checked_inline(TemplateDef(name, spec["text"], (*path, "text")))
        if isinstance(spec, dict):
            return self._checked_file(self._template_file(name, spec["file"], (*path, "file")))
        if _looks_like_template_file(spec):
            return self._checked_file(self._template_file(name, spec, path))
        return self._checked_inline(TemplateDef(name, spec, path))

    def _checked_inline(self, template: TemplateDef) -> TemplateDef | None:
        return template if self._check_text(Text(template.source, template.path)) else None

    def _checked_file(self, template: TemplateDef | None) -> TemplateDef | None:
        """A template file without control characters, which are reported at their place in the file."""
        if template is None or template.file is None:
            return template
        found = CONTROL_CHARACTER.search(template.source)
        if found is None:
            return template
        where = locate_offset(template.source, found.start())
        self.diags.error_in(CONTROL_CHAR, display_path(template.file), where, control_in_text(found.group()))
        return None

    def _template_file(self, name: str, value: str, node: JsonPath) -> TemplateDef | None:
        files = self.doc.files
        base = self.doc.path.parent
        root = files.project_root(base)
        if "\0" in value:
            self.diags.error(
                TEMPLATE_FILE, self.doc.loc(node), f"template file '{printable(value)}': a path can't contain NUL (\\0)"
            )
            return None
        target = files.resolve(base / value)
        if not target.is_relative_to(root):
            self.diags.error(
                TEMPLATE_FILE, self.doc.loc(node), f"template file '{value}' resolves outside the project root ({root})"
            )
            return None
        try:
            info = files.stat(target)
            if not info.is_file:  # a FIFO would block the read forever; a device would never end
                self.diags.error(
                    TEMPLATE_FILE,
                    self.doc.loc(node),
                    f"template file '{value}' is not a regular file: it is {info.kind}",
                )
                return None
            if info.size > MAX_TEMPLATE_FILE_BYTES:
                self.diags.error(
                    TEMPLATE_FILE,
                    self.doc.loc(node),
                    f"template file '{value}' is {info.size} bytes; storyc reads at most {MAX_TEMPLATE_FILE_BYTES}",
                )
                return None
            source = read_text(files, target)
        except FileNotFoundError:
            self.diags.error(TEMPLATE_FILE, self.doc.loc(node), f"template file not found: {value}")
            return None
        except NotARegularFile as exc:
            self.diags.error(
                TEMPLATE_FILE, self.doc.loc(node), f"template file '{value}' is not a regular file: it is {exc.kind}"
            )
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.diags.error(TEMPLATE_FILE, self.doc.loc(node), f"cannot read template file '{value}': {exc}")
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
            if not isinstance(sid, str):
                continue  # not a mapping, or no id to name it by: its schema errors say so
            if sid in first_line:
                self.diags.error(
                    DUPLICATE_SCENE,
                    self.doc.loc((*path, "id")),
                    f"scene id '{sid}' is used twice (first at line {first_line[sid]})",
                )
                continue
            first_line[sid] = self.doc.loc((*path, "id")).line
            scenes.append(self._scene(index, raw, path, characters, styles, templates))
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
    ) -> Scene:
        """The scene; one with problems is still built from its sound parts, to check those too."""
        sid: str = raw["id"]
        has_errors = not self._ok(path)
        endpoint = self._endpoint(raw, path)
        limits = endpoints.registry()[endpoint].limits
        shots = self._shots(raw, path, has_errors)
        duration = self._duration(raw, path)
        ok = self._check_prompt_kind(sid, raw, path, has_errors)
        if self._clean((*path, "duration")) and self._clean((*path, "shots")):
            ok &= self._check_duration(sid, raw, path, shots, duration, has_errors, limits)
        ok &= self._check_templates(sid, raw, path, templates)
        prompt, fields, constraints = _text(raw, path, "prompt"), _fields(raw, path), _constraints(raw, path)
        texts = [t for t in (prompt, *fields.values(), *constraints, *(s.prompt for s in shots)) if t is not None]
        for text in texts:  # each text's problem is reported
            ok &= self._check_text(text)
        with_names = self._with_names(raw, path)
        ok &= self._check_with(sid, with_names, characters, styles)
        generate_audio = bool(self._setting(raw, "generate_audio", False))
        if "audio" in raw and not generate_audio:
            self.diags.warning(
                AUDIO_IGNORED,
                self.doc.key_loc((*path, "audio")),
                f"scene '{sid}': 'audio' is left out of the prompt because generate_audio is false",
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
            prompt=prompt,
            fields=fields,
            constraints=constraints,
            shots=shots,
            template=raw.get("template"),
            shot_template=raw.get("shot_template"),
            with_names=with_names,
            start_frame=self._scene_asset(raw, path, "start_frame"),
            end_frame=self._scene_asset(raw, path, "end_frame"),
            has_errors=has_errors or not ok,
            profile=self.profile.name,
        )

    def _endpoint(self, raw: dict[str, Any], path: JsonPath) -> str:
        endpoint = self._setting(raw, "endpoint", endpoints.DEFAULT_ENDPOINT)
        if not isinstance(endpoint, str):
            return endpoints.DEFAULT_ENDPOINT  # its schema error is reported
        if endpoints.get(endpoint) is None:
            node = (*path, "endpoint") if "endpoint" in raw else self.profile.where["endpoint"]
            known = list(endpoints.registry())
            self.diags.error(
                UNKNOWN_ENDPOINT,
                self.doc.loc(node),
                f"unknown endpoint '{endpoint}'{did_you_mean(endpoint, known)}; known: {', '.join(known)}",
            )
            # Go on checking the scene against the default endpoint, so its other
            # problems are reported too; the board won't compile either way.
            return endpoints.DEFAULT_ENDPOINT
        self._warn_shadowed_profile(raw, path, endpoint)
        return endpoint

    def _warn_shadowed_profile(self, raw: dict[str, Any], path: JsonPath, endpoint: str) -> None:
        """A scene's own endpoint wins over its profile's: say so, or a 'draft' could be paid in 4K."""
        where = self.profile.where.get("endpoint")
        if "endpoint" not in raw or where is None or where[0] != "profiles":
            return
        if endpoint != self.profile.settings["endpoint"]:
            self.diags.warning(
                ENDPOINT_OVERRIDE,
                self.doc.loc((*path, "endpoint")),
                f"scene '{raw['id']}' sets its own endpoint, so {profiles.label(self.profile.name)} "
                f"renders it on {endpoint} too",
            )

    def _shots(self, raw: dict[str, Any], path: JsonPath, has_errors: bool) -> tuple[Shot, ...]:
        """The shots, in a scene with errors only those without any (each keeps its position)."""
        items = raw.get("shots", [])
        if not isinstance(items, list):
            return ()
        return tuple(
            Shot(Text(s["prompt"], (*path, "shots", i, "prompt")), _seconds(s["duration"]), (*path, "shots", i))
            for i, s in enumerate(items)
            if not has_errors or self._clean((*path, "shots", i))
        )

    def _duration(self, raw: dict[str, Any], path: JsonPath) -> int | None:
        """As written on the scene, else the target's default (a scene with shots has their sum)."""
        if "duration" in raw:
            return _seconds(raw["duration"]) if self._clean((*path, "duration")) else None
        return None if "shots" in raw else _seconds(self.target.get("duration"))

    def _with_names(self, raw: dict[str, Any], path: JsonPath) -> tuple[tuple[str, JsonPath], ...]:
        if not self._clean((*path, "with")):
            return ()
        return tuple((n, (*path, "with", i)) for i, n in enumerate(raw.get("with", [])))

    def _scene_asset(self, raw: dict[str, Any], path: JsonPath, key: str) -> ImageRef | None:
        return self._slot(raw.get(key), (*path, key)) if self._clean((*path, key)) else None

    def _check_prompt_kind(self, sid: str, raw: dict[str, Any], path: JsonPath, has_errors: bool) -> bool:
        structured = [k for k in STRUCTURED_FIELDS if k in raw]
        given = [k for k in ("prompt", "shots") if k in raw] + (["structured fields"] if structured else [])
        if not given:
            if not has_errors:  # else a misspelled 'promt' may be the reported error: don't repeat it
                self.diags.error(
                    PROMPT_FORM,
                    self.doc.loc(path),
                    f"scene '{sid}' has no prompt: give 'prompt', 'shots', or structured fields "
                    "(scene, subjects, style, camera, details, audio, constraints)",
                )
            return False
        if len(given) > 1:
            detail = f"structured fields ({', '.join(structured)})" if structured else ""
            listed = ", ".join(detail if g == "structured fields" else f"'{g}'" for g in given)
            self.diags.error(PROMPT_FORM, self.doc.loc(path), f"scene '{sid}' has {listed}: give exactly one of them")
            return False
        return True

    def _check_duration(
        self,
        sid: str,
        raw: dict[str, Any],
        path: JsonPath,
        shots: tuple[Shot, ...],
        duration: int | None,
        has_errors: bool,
        limits: endpoints.Limits,
    ) -> bool:
        """Durations and shots against the scene's own endpoint (the board schema has the loosest bounds)."""
        low, high = limits.duration_min, limits.duration_max
        if not shots:
            if duration is None:
                # Else a misspelled 'duraton', or a target.duration of 7.5, is the error already reported.
                if not has_errors and not self._default_reported("duration"):
                    self.diags.error(
                        DURATION,
                        self.doc.loc(path),
                        f"scene '{sid}' has no duration: give 'duration' ({low} to {high} seconds) or target.duration",
                        profile=self.profile.name,
                    )
                return False
            if not low <= duration <= high:
                where = (*path, "duration") if "duration" in raw else self.profile.where["duration"]
                message = f"scene '{sid}': {duration} s; its endpoint takes {low} to {high} s"
                self.diags.error(DURATION, self.doc.loc(where), message, profile=self.profile.name)
                return False
            return True
        return self._check_shots(sid, raw, path, shots, duration, limits)

    def _check_shots(
        self,
        sid: str,
        raw: dict[str, Any],
        path: JsonPath,
        shots: tuple[Shot, ...],
        duration: int | None,
        limits: endpoints.Limits,
    ) -> bool:
        if len(shots) > limits.max_shots:
            self.diags.error(
                TOO_MANY_SHOTS,
                self.doc.key_loc((*path, "shots")),
                f"scene '{sid}' has {len(shots)} shots; its endpoint takes at most {limits.max_shots}",
                profile=self.profile.name,
            )
            return False
        for shot in shots:
            if not limits.shot_duration_min <= shot.duration <= limits.shot_duration_max:
                self.diags.error(
                    DURATION,
                    self.doc.loc((*shot.path, "duration")),
                    f"scene '{sid}': a shot of {shot.duration} s; its endpoint takes "
                    f"{limits.shot_duration_min} to {limits.shot_duration_max} s per shot",
                    profile=self.profile.name,
                )
                return False
        total = sum(s.duration for s in shots)
        low, high = limits.duration_min, limits.duration_max
        if not low <= total <= high:
            self.diags.error(
                DURATION,
                self.doc.key_loc((*path, "shots")),
                f"scene '{sid}': shots add up to {total} s; a scene lasts {low} to {high} s",
                profile=self.profile.name,
            )
            return False
        if "duration" in raw and duration != total:
            self.diags.error(
                DURATION_MISMATCH,
                self.doc.loc((*path, "duration")),
                f"scene '{sid}': duration {duration} disagrees with its shots, which add up to {total} s "
                "(leave 'duration' out: it is the sum of the shots)",
            )
            return False
        return True

    def _check_templates(
        self, sid: str, raw: dict[str, Any], path: JsonPath, templates: dict[str, TemplateDef]
    ) -> bool:
        ok = True
        known = [DEFAULT_TEMPLATE, *templates]
        for key in ("template", "shot_template"):
            name = raw.get(key)
            if name is None or name in known or not self._clean((*path, key)):
                continue
            if name not in self.declared_templates:  # else it failed to load, and that is reported
                self.diags.error(
                    TEMPLATE_USE,
                    self.doc.loc((*path, key)),
                    f"scene '{sid}': unknown template '{name}'{did_you_mean(name, known)}",
                )
            ok = False
        if "template" in raw and "shots" in raw:
            self.diags.error(
                TEMPLATE_USE,
                self.doc.key_loc((*path, "template")),
                f"scene '{sid}' has shots: use 'shot_template' to lay out each shot",
            )
            ok = False
        if "shot_template" in raw and "shots" not in raw:
            self.diags.error(
                TEMPLATE_USE,
                self.doc.key_loc((*path, "shot_template")),
                f"scene '{sid}': 'shot_template' needs 'shots'",
            )
            ok = False
        return ok

    def _check_with(
        self,
        sid: str,
        with_names: tuple[tuple[str, JsonPath], ...],
        characters: dict[str, Character],
        styles: dict[str, Style],
    ) -> bool:
        ok = True
        for name, node in with_names:
            if name in characters or name in styles:
                continue
            if name not in self.broken_names:  # else its declaration's errors are reported
                self.diags.error(
                    UNKNOWN_REFERENCE,
                    self.doc.loc(node),
                    f"scene '{sid}': 'with' names unknown reference '{name}'"
                    + did_you_mean(name, [*characters, *styles]),
                )
            ok = False
        return ok


def _text(raw: dict[str, Any], path: JsonPath, key: str) -> Text | None:
    value = raw.get(key)
    return Text(value, (*path, key)) if isinstance(value, str) else None


def _fields(raw: dict[str, Any], path: JsonPath) -> dict[str, Text]:
    """The structured text fields but constraints (a list), by name."""
    return {k: t for k in STRUCTURED_FIELDS if k != "constraints" and (t := _text(raw, path, k)) is not None}


def _constraints(raw: dict[str, Any], path: JsonPath) -> tuple[Text, ...]:
    value = raw.get("constraints", [])
    if isinstance(value, str):
        return (Text(value, (*path, "constraints")),)
    if not isinstance(value, list):
        return ()
    return tuple(Text(c, (*path, "constraints", i)) for i, c in enumerate(value) if isinstance(c, str))


def _looks_like_template_file(value: str) -> bool:
    return "\n" not in value and " " not in value and value.endswith(TEMPLATE_FILE_SUFFIXES)
