"""The Jinja2 sandbox storyboard templates run in: read-only, and bounded.

A storyboard may come from an untrusted branch, and `storyc check` runs its
templates.  Jinja's `ImmutableSandboxedEnvironment` already keeps templates
away from Python internals and from changing data (`vars.update(...)` would
otherwise change what the next scene sees).  This module adds bounds on what
a template may cost, so no template can exhaust memory or hang a check:

- text a template makes (repetition, `+`, `~`, `join`, `format`, `center`,
  ...) and its output: at most `MAX_TEXT` characters;
- lists it makes by repetition or `+`: at most `MAX_ITEMS` items;
- numbers made by `**` or `*`: at most `MAX_DIGITS` digits;
- values handed to filters, tests and comparisons: at most `MAX_VALUE`
  characters when printed (a list repeated into itself is small in memory
  but enormous as text);
- text and list items a render makes in all (each `'a' * 60000` in a loop
  is a new string held in memory): at most `MAX_MADE`;
- loop iterations, macro calls and macro nesting: counted per render;
- time: every hook above checks a per-render deadline.

Each limit is checked *before* the work is done, and a template over one
fails with `TooExpensive`, naming the limit.  The checks are cooperative (no
signals or threads): every loop iteration, call, operator and filter goes
through a hook here, and a single hooked step is bounded by the size limits.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import LoopContext, Macro, Undefined
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
    modifies_known_mutable,
)
from jinja2.utils import Namespace
from markupsafe import Markup

# A prompt is at most 2,500 characters (fal answers 422 beyond): these leave ample room for
# templates that build text in steps, and none for one that builds megabytes.
MAX_TEXT = 65_536  # characters in any text a template makes, and in its output
MAX_ITEMS = 100_000  # items in a list made by repetition or '+' (Jinja's own cap on range())
MAX_VALUE = 1_048_576  # characters a value given to a filter, test or comparison would print as
MAX_DIGITS = 1_000  # digits in a number made by '**' or '*'
MAX_MADE = 16 * 1024 * 1024  # characters (and list items) one render makes in all, kept or not
MAX_ITERATIONS = 100_000  # loop iterations, in all loops of one render together
MAX_MACRO_CALLS = 10_000
MAX_MACRO_DEPTH = 50  # macro calls nested in each other (recursion)
MAX_SECONDS = 2.0  # wall-clock time of one render

_LOG10_2 = math.log10(2)

_T = TypeVar("_T")


class TooExpensive(Exception):
    """A template went over one of the limits; the message names it."""


class UnsupportedTag(TemplateSyntaxError):
    """`{% include %}`, `{% import %}`, `{% extends %}`: templates may not load other templates."""


class _Budget:
    """What one render has spent."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.iterations = 0
        self.macro_calls = 0
        self.depth = 0
        self.made = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TooExpensive(f"rendering took more than {MAX_SECONDS:g} seconds (limit {MAX_SECONDS:g} s)")


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("storyc_template_budget", default=None)


def _tick() -> _Budget | None:
    budget = _budget.get()
    if budget is not None:
        budget.tick()
    return budget


def _made(value: _T) -> _T:
    """Count the text or list a step made against the render's `MAX_MADE`; returns it."""
    if isinstance(value, (str, bytes, list, tuple)):
        _count_made(len(value))
    return value


def _count_made(size: int) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.made += size
        if budget.made > MAX_MADE:
            raise TooExpensive(f"it makes more than {MAX_MADE} characters of text in all (limit {MAX_MADE})")


@contextlib.contextmanager
def budget() -> Iterator[None]:
    """Render with a fresh budget (time, iterations, calls) inside this block."""
    token = _budget.set(_Budget())
    try:
        yield
    finally:
        _budget.reset(token)


def render(template: Any, context: dict[str, Any]) -> str:
    """Render a compiled template within the limits; its output is at most `MAX_TEXT` characters."""
    with budget():
        size = 0
        parts: list[str] = []
        for part in template.generate(context):  # streamed: the output is never built whole first
            size += len(part)
            if size > MAX_TEXT:
                raise TooExpensive(f"the output is more than {MAX_TEXT} characters (limit {MAX_TEXT})")
            parts.append(part)
        return "".join(parts)


# --- measuring values ---------------------------------------------------------------------


def size_of(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters `str(value)` is; stops counting past `limit` (returns more than it).

    Walks containers without recursion and without building any text, so a
    list holding itself a thousand times over is measured, not printed.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += int(item.bit_length() * _LOG10_2) + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, Namespace):
            stack.append(item._Namespace__attrs)  # its repr prints them
        elif isinstance(item, (type({}.keys()), type({}.values()), type({}.items()))):
            total += 12
            stack.extend(item)
        else:  # ranges, generators, undefined, macros, loop state: their text is short
            total += 40
        if total > limit:
            return total
    return total


def _check_value(value: Any, what: str) -> None:
    if isinstance(value, str):  # the common case, and cheap
        if len(value) > MAX_VALUE:
            raise TooExpensive(f"a value of {len(value)} characters given to {what} (limit {MAX_VALUE})")
        return
    if isinstance(value, (int, float, bool)) or value is None:
        return
    size = size_of(value)
    if size > MAX_VALUE:
        raise TooExpensive(f"a value of more than {MAX_VALUE} characters given to {what} (limit {MAX_VALUE})")


def _check_text(size: int, what: str) -> None:
    if size > MAX_TEXT:
        raise TooExpensive(f"{what} would make {size} characters (limit {MAX_TEXT})")


def _check_items(count: int, what: str) -> None:
    if count > MAX_ITEMS:
        raise TooExpensive(f"{what} would make {count} items (limit {MAX_ITEMS})")


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_TEXT:
        raise TooExpensive(f"{what} would make {width} characters (limit {MAX_TEXT})")


def _short(n: int) -> str:
    text = str(n) if n.bit_length() < 64 else ""
    return text or f"a {_digits(n)}-digit number"


def _number(digits: str) -> int:
    """A width or precision written in a format string (without Python's limit on long numbers)."""
    return int(digits) if len(digits) <= 100 else 10**100


def _digits(n: int) -> int:
    return int(abs(n).bit_length() * _LOG10_2) + 1


def _materialize(values: Iterable[Any], what: str) -> list[Any]:
    """Up to `MAX_ITEMS` values of an iterable (a generator from `map` or `select` included)."""
    if isinstance(values, (list, tuple)):
        items = list(values)
    else:
        items = []
        for item in values:
            items.append(item)
            if len(items) > MAX_ITEMS:
                raise TooExpensive(f"{what} of more than {MAX_ITEMS} items (limit {MAX_ITEMS})")
    _check_items(len(items), what)
    return items


def _join_size(items: list[Any], separator: Any) -> int:
    sep = len(separator) if isinstance(separator, (str, bytes)) else size_of(separator, MAX_TEXT)
    total = sep * max(len(items) - 1, 0)
    for item in items:
        total += len(item) if isinstance(item, (str, bytes)) else size_of(item, MAX_TEXT)
        if total > MAX_TEXT:
            break
    return total


def _replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(text, (str, bytes)) or not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return 0
    if len(new) <= len(old):
        return len(text)
    found = len(text) + 1 if not old else text.count(old)  # type: ignore[arg-type]  # same type, checked above
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


# printf-style specs: '%-10.3s', '%(name)*d', '%%'
_PERCENT_SPEC = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def _percent_size(fmt: str, args: Any) -> int:
    """An upper bound on the length of `fmt % args`."""
    positional = list(args) if isinstance(args, tuple) else [args]
    mapping = args if isinstance(args, dict) else None
    total = len(fmt)
    index = 0
    for match in _PERCENT_SPEC.finditer(fmt):
        name, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        for number in (width, precision):
            if number == "*":
                star = positional[index] if index < len(positional) else 0
                index += 1
                _check_width(star, "'%' formatting")
            elif number:
                _check_width(_number(number), "'%' formatting")
                total += _number(number)
        if mapping is not None and name is not None:
            value = mapping.get(name)
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        total += size_of(value, MAX_TEXT)
        if total > MAX_TEXT:
            break
    return total


# --- the hooks ---------------------------------------------------------------------------


class _Counted:
    """A loop's iterable: each item taken counts against the render's iteration budget."""

    def __init__(self, iterable: Any) -> None:
        self.iterable = iterable

    def __len__(self) -> int:
        return len(self.iterable)

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable:
            budget = _tick()
            if budget is not None:
                budget.iterations += 1
                if budget.iterations > MAX_ITERATIONS:
                    raise TooExpensive(f"loops run more than {MAX_ITERATIONS} times (limit {MAX_ITERATIONS})")
            yield item


def _binop(op: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be over a limit, before computing it."""
    if op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int) and not isinstance(times, bool):
                size = len(seq) * max(times, 0)
                if isinstance(seq, (str, bytes)):
                    _check_text(size, "string repetition")
                else:
                    _check_items(size, "list repetition")
                return
        if isinstance(left, int) and isinstance(right, int) and left and right:
            digits = _digits(left) + _digits(right) - 1
            if digits > MAX_DIGITS:
                raise TooExpensive(f"multiplication would make a number of {digits} digits (limit {MAX_DIGITS})")
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            # right >= 2**50 makes more than 10**14 digits: don't turn it into a float
            huge = right.bit_length() > 50
            digits = 0 if huge else int(right * math.log10(abs(left))) + 1
            if huge or digits > MAX_DIGITS:
                result = f"more than {10**14} digits" if huge else f"{digits} digits"
                raise TooExpensive(f"{_short(left)} ** {_short(right)} would have {result} (limit {MAX_DIGITS})")
    elif op == "+":
        if isinstance(left, (str, bytes)) and isinstance(right, (str, bytes)):
            _check_text(len(left) + len(right), "'+'")
        elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            _check_items(len(left) + len(right), "'+'")
    elif op == "%" and isinstance(left, str):
        _check_text(_percent_size(left, right), "'%' formatting")


def _str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a str or bytes method call that would make too much text; returns the arguments to call it with."""
    text, name = method.__self__, method.__name__
    what = f"'{name}'"
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0], what)
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            _check_text(len(text) + text.count("\t" if isinstance(text, str) else b"\t") * tabsize, what)
    elif name == "replace" and len(args) >= 2:
        _check_text(_replace_size(text, *args[:3], *kwargs.values()), what)
    elif name == "join" and args:
        items = _materialize(args[0], what)
        _check_text(_join_size(items, text), what)
        args = (items,)  # a generator can be read once: hand on what was measured
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
        _check_text(len(text) * max(longest, 1), what)
    return args


def _int_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if method.__name__ == "to_bytes":
        _check_width(args[0] if args else kwargs.get("length", 1), "'to_bytes'")


def _lipsum(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if isinstance(n, int) and isinstance(max, int):
            _check_text(n * max * 10, "'lipsum'")
        return func(n, html, min, max)

    return lipsum


# --- filters and tests -------------------------------------------------------------------


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _check_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a filter call over a limit; returns the arguments to call it with."""
    what = f"'{name}'"
    value = args[0] if args else None
    if name == "center":
        _check_width(_arg(args, kwargs, 1, "width", 80), what)
    elif name == "indent":
        width = _arg(args, kwargs, 1, "width", 4)
        if isinstance(value, str):
            indent = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
            _check_text(len(value) + (value.count("\n") + 1) * max(indent, 0), what)
    elif name == "wordwrap":
        width = _arg(args, kwargs, 1, "width", 79)
        wrap = _arg(args, kwargs, 3, "wrapstring", None) or "\n"
        if isinstance(value, str) and isinstance(width, int) and isinstance(wrap, str):
            lines = len(value) // max(width, 1) + value.count("\n") + 1
            _check_text(len(value) + lines * len(wrap), what)
    elif name == "replace":
        count = _arg(args, kwargs, 3, "count", None)
        old, new = _arg(args, kwargs, 1, "old", ""), _arg(args, kwargs, 2, "new", "")
        _check_text(_replace_size(value, old, new, -1 if count is None else count), what)
    elif name == "format" and isinstance(value, str):
        _check_text(_percent_size(value, kwargs or tuple(args[1:])), what)
    elif name == "join":
        items = _materialize(value if value is not None else (), what)
        _check_text(_join_size(items, _arg(args, kwargs, 1, "d", "")), what)
        args = (items, *args[1:])
    elif name in ("batch", "slice"):
        _check_items(_arg(args, kwargs, 1, "linecount" if name == "batch" else "slices", 1), what)
    elif name == "round":
        precision = _arg(args, kwargs, 1, "precision", 0)
        if isinstance(precision, int) and abs(precision) > MAX_DIGITS:
            raise TooExpensive(f"'round' to {precision} digits (limit {MAX_DIGITS})")
    elif name == "sum" and value is not None:
        items = _materialize(value, what)
        start = _arg(args, kwargs, 2, "start", 0)
        if isinstance(start, (list, tuple, str)):
            _check_items(len(start) + sum(len(i) for i in items if isinstance(i, (list, tuple, str))), what)
        args = (items, *args[1:])
    return args


def _guarded(kind: str, name: str, func: Any) -> Any:
    """A filter or test that measures what it is given first (keeps Jinja's pass_context & co.)."""
    passes = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    what = f"the {kind} '{name}'"

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        given = args[passes:]
        for value in (*given, *kwargs.values()):
            _check_value(value, what)
        if kind == "filter":
            given = _check_filter(name, given, kwargs)
        return _made(func(*args[:passes], *given, **kwargs))

    return guarded


# --- the environment ---------------------------------------------------------------------

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with `~` and comparisons routed through the environment's hooks."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.guarded_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("environment.guarded_compare(")
        self.visit(node.expr, frame)
        self.write(", (")
        for op in node.ops:
            self.write(f"({op.op!r}, ")
            self.visit(op.expr, frame)
            self.write("), ")
        self.write("))")


_UNSUPPORTED = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}


def _bounded_concat(parts: Iterable[str]) -> str:
    """Join a block's output (a macro's, a `{% set %}` block's): at most `MAX_TEXT` characters."""
    items = parts if isinstance(parts, list) else list(parts)
    size = 0
    for part in items:
        size += len(part)
        if size > MAX_TEXT:
            raise TooExpensive(f"a block's output is more than {MAX_TEXT} characters (limit {MAX_TEXT})")
    return _made("".join(items))


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """`ImmutableSandboxedEnvironment` with every costly step checked against the limits above."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_bounded_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        for name, func in list(self.filters.items()):
            self.filters[name] = _guarded("filter", name, func)
        for name, func in list(self.tests.items()):
            self.tests[name] = _guarded("test", name, func)
        lipsum: Callable[..., Any] = self.globals["lipsum"]  # type: ignore[assignment]
        self.globals["lipsum"] = _lipsum(lipsum)

    # -- parsing: loops are counted, and other templates can't be loaded

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all(tuple(_UNSUPPORTED)):
            tag = _UNSUPPORTED[type(node)]
            raise UnsupportedTag(
                f"'{{% {tag} %}}' is not supported: a storyboard's templates can't load other templates "
                "(declare each under 'templates' and pick one with 'template:')",
                node.lineno,
                name,
                filename,
            )
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.EnvironmentAttribute("counted", lineno=loop.lineno),
                [loop.iter],
                [],
                None,
                None,
                lineno=loop.lineno,
            )
        tree.set_environment(self)
        return tree

    @staticmethod
    def counted(iterable: Any) -> _Counted:
        return _Counted(iterable)

    # -- the runtime hooks

    def _finalize(self, value: Any) -> Any:
        """Every `{{ value }}` before it becomes text."""
        if isinstance(value, str):
            size = len(value)
        elif isinstance(value, (int, float, bool)) or value is None:
            return value
        else:
            size = size_of(value, MAX_TEXT)
        _check_text(size, "'{{ }}'")
        _count_made(size)
        return value

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _binop(operator, left, right)
        return _made(super().call_binop(context, operator, left, right))

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        return _made(value) if isinstance(argument, slice) else value

    def guarded_concat(self, join: Callable[[Iterable[Any]], str], values: tuple[Any, ...]) -> str:
        _tick()
        size = 0
        for value in values:
            size += len(value) if isinstance(value, str) else size_of(value, MAX_TEXT)
        _check_text(size, "'~'")
        return _made(join(values))

    def guarded_compare(self, left: Any, comparisons: tuple[tuple[str, Any], ...]) -> Any:
        _tick()
        result: Any = True
        for op, right in comparisons:
            for value in (left, right):
                _check_value(value, "a comparison")
            result = _COMPARE[op](left, right)
            if not result:
                return result
            left = right
        return result

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        if modifies_known_mutable(obj, attribute):
            return self.undefined(
                f"'{type(obj).__name__}.{attribute}' changes data, and templates may only read it",
                name=attribute,
                obj=obj,
                exc=SecurityError,
            )
        return super().unsafe_undefined(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text, is_map = value.__self__, value.__name__ == "format_map"

        @functools.wraps(wrapped)
        def bounded(*args: Any, **kwargs: Any) -> str:
            _tick()
            mapping = args[0] if is_map and args else kwargs
            formatter: _BoundedFormatter
            if isinstance(text, Markup):
                formatter = _BoundedEscapeFormatter(self, escape=text.escape)
            else:
                formatter = _BoundedFormatter(self)
            made: str = type(text)(formatter.vformat(text, () if is_map else args, mapping))
            return _made(made)

        return bounded

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _tick()
        if isinstance(__obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (_Counted(args[0]), *args[1:])
        elif not isinstance(__obj, Macro):
            owner = getattr(__obj, "__self__", None)
            if isinstance(owner, (str, bytes)):
                args = _str_method(__obj, args, kwargs)
            elif isinstance(owner, int):
                _int_method(__obj, args, kwargs)
            return _made(super().call(__context, __obj, *args, **kwargs))
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.macro_calls += 1
        if budget.macro_calls > MAX_MACRO_CALLS:
            raise TooExpensive(f"macros are called more than {MAX_MACRO_CALLS} times (limit {MAX_MACRO_CALLS})")
        budget.depth += 1
        try:
            if budget.depth > MAX_MACRO_DEPTH:
                raise TooExpensive(f"macro calls nest more than {MAX_MACRO_DEPTH} deep (limit {MAX_MACRO_DEPTH})")
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1


class _BoundedFormatter(SandboxedFormatter):
    """`str.format` in the sandbox, with each field's width and the total size checked."""

    _SPEC = re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[_,]?(?:\.(\d+))?")

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.total = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        _tick()
        match = self._SPEC.match(format_spec)
        width, precision = (match.group(1), match.group(2)) if match else ("", None)
        for number in (width, precision):
            if number:
                _check_width(_number(number), "'format'")
        self.total += max(_number(width or "0"), size_of(value, MAX_TEXT))
        _check_text(self.total, "'format'")
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    """The same, for `Markup` text (inside `{% autoescape %}`)."""
