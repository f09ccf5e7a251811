"""A fast yes/no JSON Schema check, so a valid document never needs jsonschema.

jsonschema explains *why* a document is invalid (storyc turns its errors into
sentences), but importing it, building a validator and walking a 1,000-scene
board with it costs a large share of a compile.  Most boards are valid, so
`checker(schema)` compiles the schema into plain closures that answer one
question: is this instance valid?  Only when the answer is not a sure "yes"
does the caller run jsonschema for the errors.

The check is exact for the keywords it knows (Draft 2020-12 semantics, as
jsonschema applies them); anything else makes `checker` return None (use
jsonschema), and an instance it can't judge exactly (a float against `enum`,
a list of mappings under `uniqueItems`...) makes the check answer "not sure".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

# Keywords that never make an instance invalid (annotations, and `format`, which
# Draft202012Validator does not assert without a format checker).
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default"})
_ANNOTATIONS |= {"format", "deprecated", "readOnly", "writeOnly"}


class _Unsure(Exception):
    """The instance is outside what the fast check judges exactly: ask jsonschema."""


class _Unsupported(Exception):
    """The schema uses a keyword the fast check does not know."""


def checker(schema: dict[str, Any], regex: Callable[[str], re.Pattern[str]] = re.compile) -> Check | None:
    """A function telling whether an instance is surely valid (True) or not surely (False).

    `regex` compiles a `pattern` as the validator it stands in for reads it (searched, not matched).
    None: the schema uses a keyword not handled here.
    """
    judge = verdict(schema, regex)
    if judge is None:
        return None
    return lambda instance: judge(instance) is True


def verdict(
    schema: dict[str, Any], regex: Callable[[str], re.Pattern[str]] = re.compile
) -> Callable[[Any], bool | None] | None:
    """Exactly jsonschema's answer (valid: True, invalid: False), or None when the check can't tell."""
    try:
        check = _Compiler(schema, regex).compile(schema)
    except _Unsupported:
        return None

    def judge(instance: Any) -> bool | None:
        try:
            return check(instance)
        except (_Unsure, RecursionError):
            return None

    return judge


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer()),
}


def _scalar_equal(value: Any, instance: Any) -> bool:
    """jsonschema's `equal` for the simple cases; _Unsure for the rest."""
    if isinstance(instance, str) or isinstance(value, str):
        return bool(instance == value)
    if instance is None or value is None:
        return instance is value
    if isinstance(instance, bool) or isinstance(value, bool):
        if isinstance(instance, bool) and isinstance(value, bool):
            return instance is value
        raise _Unsure
    if type(instance) is int and type(value) is int:
        return bool(instance == value)
    raise _Unsure


class _Compiler:
    def __init__(self, root: dict[str, Any], regex: Callable[[str], re.Pattern[str]]) -> None:
        self.root = root
        self.regex = regex
        self.refs: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/$defs/") or "/" in ref[len("#/$defs/") :] or "~" in ref or "%" in ref:
            raise _Unsupported(ref)
        if ref not in self.refs:
            target = self.root.get("$defs", {}).get(ref[len("#/$defs/") :])
            if not isinstance(target, (dict, bool)):
                raise _Unsupported(ref)
            slot: list[Check] = []
            self.refs[ref] = lambda x: slot[0](x)  # recursion-safe: filled in below
            slot.append(self.compile(target))
        return self.refs[ref]

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False
        if not isinstance(schema, dict):
            raise _Unsupported(schema)
        if "$id" in schema and schema is not self.root:
            raise _Unsupported("$id")  # a new base for $ref: not handled here
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS:
                continue
            checks.append(self.keyword(key, value, schema))
        if len(checks) == 1:
            return checks[0]

        def all_of(x: Any) -> bool:
            for check in checks:  # noqa: SIM110 - a plain loop is quicker than all() over a generator
                if not check(x):
                    return False
            return True

        return all_of

    def keyword(self, key: str, value: Any, schema: dict[str, Any]) -> Check:
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or any(n not in _TYPES for n in names):
                raise _Unsupported(key)
            tests = [_TYPES[n] for n in names]
            if len(tests) == 1:
                return tests[0]
            return lambda x: any(t(x) for t in tests)
        if key == "$ref":
            return self.ref(value)
        if key == "properties":
            props = {name: self.compile(sub) for name, sub in value.items()}

            def properties(x: Any) -> bool:
                if isinstance(x, dict):
                    for name, val in x.items():
                        check = props.get(name)
                        if check is not None and not check(val):
                            return False
                return True

            return properties
        if key == "additionalProperties":
            if "patternProperties" in schema:
                raise _Unsupported(key)
            known = frozenset(schema.get("properties", {}))
            extra = self.compile(value)

            def additional(x: Any) -> bool:
                if isinstance(x, dict):
                    for name, val in x.items():
                        if name not in known and not extra(val):
                            return False
                return True

            return additional
        if key == "required":
            needed = tuple(value)
            return lambda x: not isinstance(x, dict) or all(k in x for k in needed)
        if key == "propertyNames":
            names = self.compile(value)
            return lambda x: not isinstance(x, dict) or all(names(k) for k in x)
        if key == "items":
            if not isinstance(value, (dict, bool)) or "prefixItems" in schema:
                raise _Unsupported(key)
            item = self.compile(value)
            return lambda x: not isinstance(x, list) or all(item(i) for i in x)
        if key == "pattern":
            compiled = self.regex(value)
            return lambda x: not isinstance(x, str) or compiled.search(x) is not None
        if key in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"):
            return self.bound(key, value)
        if key == "const":
            return lambda x: _scalar_equal(value, x)
        if key == "enum":
            values = list(value)
            return lambda x: any(_scalar_equal(v, x) for v in values)
        if key == "uniqueItems":
            if not value:
                return lambda x: True
            return _unique
        if key in ("oneOf", "anyOf"):
            subs = [self.compile(s) for s in value]
            if key == "anyOf":
                return lambda x: any(s(x) for s in subs)
            return lambda x: sum(1 for s in subs if s(x)) == 1
        if key == "not":
            sub = self.compile(value)
            return lambda x: not sub(x)
        raise _Unsupported(key)

    @staticmethod
    def bound(key: str, limit: Any) -> Check:
        if not _is_number(limit):
            raise _Unsupported(key)
        if key == "minLength":
            return lambda x: not isinstance(x, str) or len(x) >= limit
        if key == "maxLength":
            return lambda x: not isinstance(x, str) or len(x) <= limit
        if key == "minItems":
            return lambda x: not isinstance(x, list) or len(x) >= limit
        if key == "maxItems":
            return lambda x: not isinstance(x, list) or len(x) <= limit
        if key == "minimum":
            return lambda x: not _is_number(x) or x >= limit
        return lambda x: not _is_number(x) or x <= limit


def _unique(x: Any) -> bool:
    if not isinstance(x, list):
        return True
    if not all(isinstance(i, str) for i in x):
        raise _Unsure
    return len(set(x)) == len(x)
