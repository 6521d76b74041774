"""Templates: Jinja text with one ``[MASK]`` slot (and optional ``[SOFT]`` slots), rendered safely.

A template is rendered into a :class:`Prompt`, a sequence of :class:`Segment` objects, so that the
scorer knows which characters came from the example (and may be shortened to fit the model's window)
and which are the template's own words, the mask or soft slots (which are never cut).
This module imports neither torch nor transformers.
"""

from __future__ import annotations

import contextvars
import functools
import numbers
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2
import jinja2.meta
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from .errors import DataError, MissingFieldError, PromptlearnError, TemplateError
from .resources import read_text_file, shipped_dir

MASK = "[MASK]"
_SLOT = re.compile(r"\[MASK\]|\[SOFT(?::(\d+))?\]")
# Markers wrapped around every ``{{ expression }}`` output: STX <block index> US <text> ETX.
_OPEN, _SEP, _CLOSE = "\x02", "\x1f", "\x03"
_MARKED = re.compile("\x02(\\d+)\x1f(.*?)\x03", re.DOTALL)
_SHIPPED_NAME = re.compile(r"^[A-Za-z0-9_\-]+/[A-Za-z0-9_\-.]+$")


@dataclass(frozen=True)
class Segment:
    """One piece of a rendered prompt.

    kind is ``"text"`` (the template's own words), ``"field"`` (text from the example; ``fields``
    names the example fields it was computed from), ``"mask"`` or ``"soft"`` (``n_soft`` vectors).
    ``demo`` is None for the example's own prompt; segments of an in-context demonstration (see
    :mod:`promptlearn.pipeline.demonstrations`) carry the demonstration's pool index there (its label word is
    a ``"text"`` segment, its separator too), so truncation can shorten or drop them first.
    """

    kind: str
    text: str = ""
    fields: frozenset[str] = frozenset()
    n_soft: int = 0
    demo: int | None = None


@dataclass(frozen=True)
class Prompt:
    """A rendered template: its segments and which fields may be shortened to fit a window.

    ``context`` counts the leading segments that form a shared context (demonstrations placed before
    the example, a chat template's opening): a causal scorer tokenizes them apart from the rest and
    may reuse their key-value cache across prompts with the same context. 0 for a plain template.
    """

    segments: tuple[Segment, ...]
    shortenable: frozenset[str] | None = None  # None: every field segment may be shortened
    context: int = 0

    @property
    def text(self) -> str:
        """The prompt as plain text, slots written as ``[MASK]`` / ``[SOFT:n]``."""
        return "".join(_segment_text(s) for s in self.segments)

    def is_shortenable(self, segment: Segment) -> bool:
        if segment.kind != "field" or not segment.fields:
            return False
        return self.shortenable is None or bool(segment.fields & self.shortenable)

    def mask_index(self) -> int:
        return next(i for i, s in enumerate(self.segments) if s.kind == "mask")

    @property
    def demonstrations(self) -> tuple[int, ...]:
        """The pool indices of the prompt's demonstrations, in prompt order (empty without demonstrations)."""
        return tuple(dict.fromkeys(s.demo for s in self.segments if s.demo is not None))


def _segment_text(segment: Segment) -> str:
    if segment.kind == "mask":
        return MASK
    if segment.kind == "soft":
        return f"[SOFT:{segment.n_soft}]"
    return segment.text


def _rstrip_punct(value: Any) -> str:
    """Drop trailing sentence punctuation and spaces (LM-BFF's NLI templates)."""
    return str(value).rstrip(" .?!")


def _lcfirst(value: Any) -> str:
    """Lower-case the first character (LM-BFF's NLI templates)."""
    text = str(value)
    return text[:1].lower() + text[1:]


# -- bounded rendering -------------------------------------------------------------------------------------------
#: One render may take this many steps (loop iterations, calls, filters, operators) and this long; every value it
#: builds, and its output, may hold this many characters (or items) plus 4 per character of the example's text,
#: and all the values it builds together 4 times that.
MAX_RENDER_STEPS = 1_000_000
MAX_RENDER_SECONDS = 2.0
MAX_RENDER_CHARS = 1_000_000
_MAX_INT_ARGUMENT = 1_000_000  # a larger integer given to a call or filter (a width, a count) is refused
_BIG_FORMAT = re.compile(r"\d{7,}")  # a width or precision of 7+ digits in a format string
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


class _LimitExceeded(Exception):
    """A render went past its budget (see :class:`_Budget`)."""


class _Budget:
    """What one render may still do; the sandbox counts every loop iteration, call, filter and operator."""

    def __init__(self, chars: int) -> None:
        self.steps = 0
        self.chars = chars
        self.created = 0
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_RENDER_STEPS:
            raise _LimitExceeded(f"the template takes more than {MAX_RENDER_STEPS:,} steps (loop iterations, calls, "
                                 "filters) for one example")
        if time.monotonic() > self.deadline:
            raise _LimitExceeded(f"rendering one example takes more than {MAX_RENDER_SECONDS:g} s")

    def size(self, n: int, what: str = "a value") -> None:
        if n > self.chars:
            raise _LimitExceeded(f"{what} of {n:,} characters or items exceeds the {self.chars:,} a render may build")

    def made(self, value: Any) -> Any:
        """Count a value the template built (a call's, filter's or operator's result)."""
        if isinstance(value, _SIZED):
            n = _extent(value, self.chars)
            self.size(n)
            self.created += n
            if self.created > 4 * self.chars:
                raise _LimitExceeded(f"the values built add up to more than {4 * self.chars:,} characters or items")
        return value

    def iterate(self, iterable: Any) -> Any:
        for item in iterable:
            self.step()
            yield item


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("promptlearn_render_budget", default=None)


def _extent(value: Any, limit: int) -> int:
    """Characters of a string, or items of a collection plus what its items hold (nested collections counted
    through, so a list of many references to one long string is as big as its text); stops past ``limit``."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    total = len(value)
    for item in value:
        if total > limit:
            break
        if isinstance(item, _SIZED):
            total += _extent(item, limit - total)
    return total


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_ints(values: Iterable[Any]) -> None:
    for value in values:
        if _is_int(value) and abs(value) > _MAX_INT_ARGUMENT:
            raise _LimitExceeded(f"the argument {value} is larger than a template may pass ({_MAX_INT_ARGUMENT:,})")


_NESTED_WIDTH = re.compile(r"\*|\{[^{}]*:[^{}]*\{")  # a width taken from the arguments: % with *, {:{}} in format


def _check_format(text: str, arguments: Any) -> None:
    """``text % arguments`` / ``text.format(...)``: no width or precision of 7 digits, in the text or taken from
    the arguments."""
    if _BIG_FORMAT.search(text):
        raise _LimitExceeded("a format width or precision of 7 or more digits")
    if _NESTED_WIDTH.search(text):
        _check_ints(arguments if isinstance(arguments, (tuple, list)) else (arguments,))


def _check_amplifier(name: str, value: Any, args: Sequence[Any], kwargs: Mapping[str, Any], budget: _Budget) -> None:
    """Before a filter or string method that can build far more than it is given: refuse a huge result."""
    def arg(i: int, key: str, default: Any) -> Any:
        return args[i] if len(args) > i else kwargs.get(key, default)

    if name == "replace" and isinstance(value, str):
        old, new = arg(0, "old", None), arg(1, "new", None)
        if isinstance(old, str) and isinstance(new, str):
            count = len(value) + 1 if not old else value.count(old)
            budget.size(len(value) + count * len(new), "the result of replace")
    elif name == "join" and isinstance(value, (str, list, tuple)):  # filter: list|join(sep); method: sep.join(list)
        items, separator = (arg(0, "iterable", ()), value) if isinstance(value, str) else (value, arg(0, "d", ""))
        if isinstance(items, (list, tuple)) and isinstance(separator, str):
            budget.size(_extent(items, budget.chars) + len(separator) * len(items), "the result of join")
    elif name == "indent" and isinstance(value, str):
        width = arg(0, "width", 4)
        width = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        budget.size(len(value) + (value.count("\n") + 1) * width, "the result of indent")
    elif name == "wordwrap" and isinstance(value, str):
        width, wrap = arg(0, "width", 79), arg(2, "wrapstring", None)
        if _is_int(width) and isinstance(wrap, str):
            budget.size(len(value) + (len(value) // max(width, 1) + 1) * len(wrap), "the result of wordwrap")
    elif name in ("format", "format_map") and isinstance(value, str):
        _check_format(value, list(args) + list(kwargs.values()))
    elif name == "expandtabs" and isinstance(value, str):
        width = arg(0, "tabsize", 8)
        if _is_int(width):
            budget.size(len(value) + value.count("\t") * width, "the result of expandtabs")


def _bounded_filter(name: str, function: Any) -> Any:
    """A filter counted against the render's budget: integer arguments (widths, counts) and results bounded."""
    skip = 2 if getattr(function, "jinja_pass_arg", None) is not None else 1  # the context/environment, the value

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is None:
            return function(*args, **kwargs)
        budget.step()
        if name != "format":  # (formatting a number is fine; widths are checked below)
            _check_ints(args[skip:])
            _check_ints(kwargs.values())
        if len(args) >= skip:
            if name == "join" and not isinstance(args[skip - 1], (str, list, tuple)):  # a generator: count it first
                args = (*args[:skip - 1], list(args[skip - 1]), *args[skip:])
            _check_amplifier(name, args[skip - 1], args[skip:], kwargs, budget)
        return budget.made(function(*args, **kwargs))

    return bounded


def _loop_budget(iterable: Any) -> Any:
    """Wraps the iterable of every ``{% for %}``: each iteration is a step."""
    budget = _BUDGET.get()
    return iterable if budget is None else budget.iterate(iterable)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox (no access to internals, no changing lists or dicts in place, ranges of at most
    100,000) whose work is bounded too: calls, filters, operators and loop iterations count against a budget, and
    no value may grow huge (:class:`_Budget`)."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _BUDGET.get()
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.step()
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
        if not (isinstance(owner, str) and name in ("format", "format_map")):  # (formatting a number is fine)
            _check_ints(args)
            _check_ints(kwargs.values())
        if isinstance(owner, str):
            if name == "join" and args and not isinstance(args[0], (str, list, tuple)):  # a generator: count it first
                args = (list(args[0]), *args[1:])
            _check_amplifier(name, owner, args, kwargs, budget)
        return budget.made(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
            _check_binop(operator, left, right, budget)
        result = self.binop_table[operator](left, right)
        return result if budget is None else budget.made(result)


def _check_binop(operator: str, left: Any, right: Any, budget: _Budget) -> None:
    """Refuse an operation whose result would be huge before computing it."""
    sequences = (str, bytes, list, tuple)
    if operator == "*":
        if isinstance(right, sequences) and _is_int(left):
            left, right = right, left
        if isinstance(left, sequences) and _is_int(right):
            budget.size(_extent(left, budget.chars) * max(int(right), 0), "a repeated value")
        elif _is_int(left) and _is_int(right) and int(left).bit_length() + int(right).bit_length() > 100_000:
            raise _LimitExceeded("an integer product of more than 100,000 bits")
    elif operator == "**" and _is_int(left) and _is_int(right) and abs(int(left)) > 1:
        if int(right) * int(left).bit_length() > 100_000:
            raise _LimitExceeded("a power of more than 100,000 bits")
    elif operator == "+" and isinstance(left, sequences) and isinstance(right, sequences):
        budget.size(_extent(left, budget.chars) + _extent(right, budget.chars), "a concatenation")
    elif operator == "%" and isinstance(left, str):
        _check_format(left, right)


def _environment() -> SandboxedEnvironment:
    env = _BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,  # the header comment on line 1 leaves no blank first line
        autoescape=False,
    )
    env.filters["rstrip_punct"] = _rstrip_punct
    env.filters["lcfirst"] = _lcfirst
    env.filters = {name: _bounded_filter(name, function) for name, function in env.filters.items()}
    env.filters["_segment"] = _mark_segment  # the marker of every output: not the template's own work
    env.filters["_loop_budget"] = _loop_budget
    env.globals.pop("lipsum", None)  # generates text by the paragraph: nothing a prompt needs
    return env


def _mark_segment(value: Any, block: int) -> str:
    text = str(value).replace(_OPEN, "").replace(_SEP, "").replace(_CLOSE, "")
    return f"{_OPEN}{block}{_SEP}{text}{_CLOSE}"


_ENV = _environment()


class Template:
    """A Jinja template with one ``[MASK]``; fields come from each example's dict.

    ``shortenable`` names the fields truncation may shorten when a prompt is too long for the
    model (default: every field, the longest first). The template's own words, the mask and soft
    slots are never cut.
    """

    def __init__(self, source: str, *, name: str | None = None, path: str | Path | None = None,
                 shortenable: Iterable[str] | None = None) -> None:
        self.source = source.rstrip("\n")
        self.path = str(path) if path is not None else None
        self.name = name or (Path(path).stem if path is not None else "template")
        self.where = where = self.path or f"template {self.name!r}"
        try:
            ast = _ENV.parse(self.source)
            self.fields: frozenset[str] = frozenset(jinja2.meta.find_undeclared_variables(ast))
        except jinja2.TemplateSyntaxError as exc:  # also unknown filters and tests
            raise TemplateError(f"{where}: Jinja error on line {exc.lineno}: {exc.message}") from None
        literal = "".join(node.data for node in ast.find_all(jinja2.nodes.TemplateData))
        if MASK not in literal:
            raise TemplateError(
                f"{where}: no [MASK] slot in the template's own text; write where the label word goes, "
                f"e.g. '{{{{ text }}}} It was [MASK].'"
            )
        for match in re.finditer(r"\[SOFT:([^\]]*)\]", self.source):
            if not match.group(1).isdigit() or int(match.group(1)) < 1:
                raise TemplateError(f"{where}: bad soft slot {match.group(0)!r}; write [SOFT] or [SOFT:n] with n >= 1")
        if isinstance(shortenable, str):
            raise TemplateError(f"{where}: shortenable must be a list of field names such as [{shortenable!r}], "
                                f"not a string")
        self.shortenable = frozenset(shortenable) if shortenable is not None else None
        if self.shortenable is not None and not self.shortenable <= self.fields:
            unknown = sorted(self.shortenable - self.fields)
            raise TemplateError(f"{where}: shortenable field(s) {unknown} are not used by the template "
                                f"(its fields: {sorted(self.fields)})")
        self._block_fields: list[frozenset[str]] = []
        self._flat = _flat_parts(ast)
        self._mark_outputs(ast)
        try:
            self._compiled = _ENV.template_class.from_code(_ENV, _ENV.compile(ast), _ENV.make_globals(None), None)
        except jinja2.TemplateSyntaxError as exc:  # e.g. an unknown filter
            raise TemplateError(f"{where}: Jinja error on line {exc.lineno}: {exc.message}") from None

    def _mark_outputs(self, ast: jinja2.nodes.Template) -> None:
        """Wrap every ``{{ expression }}`` in the ``_segment`` filter, remembering the fields it reads.

        Names bound by ``{% for %}`` or ``{% set %}`` stand for the fields they were computed from, so
        example text printed through a loop variable is still shortenable.
        """
        aliases: dict[str, set[str]] = {}
        bindings = [(n.target, n.iter) for n in ast.find_all(jinja2.nodes.For)]
        bindings += [(n.target, n.node) for n in ast.find_all(jinja2.nodes.Assign)]
        for _ in range(len(bindings) + 1):  # propagate through chains of bindings
            for target, value in bindings:
                reads = self._reads(value, aliases)
                for name in target.find_all(jinja2.nodes.Name) if not isinstance(target, jinja2.nodes.Name) else [target]:
                    aliases.setdefault(name.name, set()).update(reads)
        for output in ast.find_all(jinja2.nodes.Output):
            for index, node in enumerate(output.nodes):
                if isinstance(node, jinja2.nodes.TemplateData):
                    continue
                block = len(self._block_fields)
                self._block_fields.append(frozenset(self._reads(node, aliases)))
                output.nodes[index] = jinja2.nodes.Filter(node, "_segment", [jinja2.nodes.Const(block)], [], None,
                                                          None, lineno=node.lineno)
        for loop in ast.find_all(jinja2.nodes.For):  # every iteration counts against the render's budget
            loop.iter = jinja2.nodes.Filter(loop.iter, "_loop_budget", [], [], None, None, lineno=loop.lineno)

    def _reads(self, node: jinja2.nodes.Node, aliases: dict[str, set[str]]) -> set[str]:
        names = {n.name for n in ([node] if isinstance(node, jinja2.nodes.Name) else node.find_all(jinja2.nodes.Name))}
        return {n for n in names if n in self.fields}.union(*(aliases.get(n, set()) for n in names))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, *, shortenable: Iterable[str] | None = None) -> Template:
        path = Path(path)
        source = read_text_file(path, "template file", TemplateError)
        return cls(source, path=path, shortenable=shortenable)

    @classmethod
    def load(cls, spec: str | Path | Template, *, shortenable: Iterable[str] | None = None) -> Template:
        """Template from an object, a file path, a shipped name ``task/name`` or inline Jinja text."""
        if isinstance(spec, Template):
            return spec
        text = str(spec)
        if MASK in text and not Path(text).suffix == ".j2":
            return cls(text, name="inline", shortenable=shortenable)
        path = Path(text)
        if path.is_file():
            return cls.from_file(path, shortenable=shortenable)
        if _SHIPPED_NAME.match(text):
            task, name = text.split("/")
            shipped = shipped_dir("templates") / task / (name if name.endswith(".j2") else name + ".j2")
            if shipped.is_file():
                return cls.from_file(shipped, shortenable=shortenable)
            if path.suffix != ".j2":
                raise TemplateError(f"no shipped template {text!r}; available: {', '.join(list_shipped()) or 'none'}")
        if path.suffix == ".j2" or text.startswith((".", "/", "~")):
            raise TemplateError(f"template file not found: {path}")
        raise TemplateError(
            f"template {text!r} is neither a file, a shipped name like 'sst2/it_was', nor Jinja text with [MASK]"
        )

    # -- rendering ----------------------------------------------------------------------------
    def render(self, example: Mapping[str, Any]) -> Prompt:
        """Render one example into segments; exactly one [MASK] must result."""
        missing = sorted(f for f in self.fields if f not in example)
        if missing:
            raise MissingFieldError(
                f"{self.where} uses field(s) {missing} that the example lacks "
                f"(its fields: {sorted(example)}); rename your columns or map them (e.g. --column {missing[0]}=COLUMN)"
            )
        for name in self.fields:
            value = example[name]
            if value is None or (isinstance(value, float) and value != value):
                raise MissingFieldError(
                    f"field {name!r} is empty (None/NaN) in an example for {self.where}; fill or drop it"
                )
            if isinstance(value, str) and not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:  # a lone surrogate: bytes that were not UTF-8, decoded leniently
                    raise DataError(f"field {name!r} is not valid text (character {exc.start}: {value[exc.start]!r}"
                                    f" is half of a surrogate pair, e.g. from input that is not UTF-8); fix or "
                                    f"re-encode the data as UTF-8") from None
        if self._flat is not None:  # literal text and plain {{ field }}: no Jinja needed, same segments
            return self._render_flat(example)
        text_size = sum(len(v) for v in example.values() if isinstance(v, str))
        token = _BUDGET.set(_Budget(MAX_RENDER_CHARS + 4 * text_size))
        try:
            rendered = self._render_bounded(example)
        except jinja2.UndefinedError as exc:
            raise MissingFieldError(f"{self.where}: {exc.message}") from None
        except _LimitExceeded as exc:
            raise TemplateError(f"{self.where}: rendering stopped: {exc}; templates must stay small (see "
                                f"promptlearn.core.template.MAX_RENDER_STEPS)") from None
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"{self.where}: unsafe operation blocked by the sandbox: {exc}") from None
        except Exception as exc:  # any error raised while evaluating the template's expressions
            raise TemplateError(f"{self.where}: rendering failed: {type(exc).__name__}: {exc}") from None
        finally:
            _BUDGET.reset(token)
        segments = self._split(rendered)
        n_masks = sum(s.kind == "mask" for s in segments)
        if n_masks != 1:
            raise TemplateError(
                f"{self.where}: rendered prompt has {n_masks} [MASK] slots, expected exactly one"
            )
        return Prompt(segments, self.shortenable)

    def _render_bounded(self, example: Mapping[str, Any]) -> str:
        """The Jinja rendering, its output counted as it is produced (the render's budget is set by the caller)."""
        budget = _BUDGET.get()
        parts, size = [], 0
        for part in self._compiled.generate(**example):
            size += len(part)
            budget.size(size, "the rendered prompt")  # type: ignore[union-attr]
            parts.append(part)
        return "".join(parts)

    def _render_flat(self, example: Mapping[str, Any]) -> Prompt:
        """:meth:`render` of a template that is only literal text and ``{{ field }}`` outputs (most templates),
        without running Jinja: the same segments, a fraction of the time (scoring renders every example)."""
        segments: list[Segment] = []
        for part in self._flat:  # type: ignore[union-attr]
            if isinstance(part, tuple):
                name, fields = part
                text = _MARKERS.sub("", str(example[name]))  # as the Jinja path's _segment filter does
                if text:
                    segments.append(Segment("field", text, fields))
            else:
                segments.extend(part)
        return Prompt(tuple(_merge_text(segments)), self.shortenable)

    def _split(self, rendered: str) -> tuple[Segment, ...]:
        segments: list[Segment] = []
        position = 0
        for match in _MARKED.finditer(rendered):
            segments.extend(_split_literal(rendered[position:match.start()]))
            if match.group(2):
                segments.append(Segment("field", match.group(2), self._block_fields[int(match.group(1))]))
            position = match.end()
        segments.extend(_split_literal(rendered[position:]))
        return tuple(_merge_text(segments))

    def __repr__(self) -> str:
        return f"Template({self.path or self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and (self.source, self.shortenable) == (other.source, other.shortenable)

    def __hash__(self) -> int:
        return hash((self.source, self.shortenable))


def _flat_parts(ast: jinja2.nodes.Template) -> list[Any] | None:
    """A template made only of literal text and ``{{ name }}`` outputs as parts for :meth:`Template._render_flat`:
    a literal's segments (a list, slots split out) or ``(field name, fields)``; None for any other template."""
    if not all(isinstance(node, jinja2.nodes.Output) for node in ast.body):
        return None
    parts: list[Any] = []
    for output in ast.body:
        for node in output.nodes:
            if isinstance(node, jinja2.nodes.TemplateData):
                parts.append(_split_literal(node.data))
            elif isinstance(node, jinja2.nodes.Name) and node.ctx == "load":
                parts.append((node.name, frozenset([node.name])))
            else:
                return None
    if sum(s.kind == "mask" for part in parts if isinstance(part, list) for s in part) != 1:
        return None  # the general path reports the error
    return parts


_MARKERS = re.compile("[\x02\x1f\x03]")


def _split_literal(text: str) -> list[Segment]:
    out: list[Segment] = []
    position = 0
    for match in _SLOT.finditer(text):
        if match.start() > position:
            out.append(Segment("text", text[position:match.start()]))
        if match.group(0) == MASK:
            out.append(Segment("mask"))
        else:
            out.append(Segment("soft", n_soft=int(match.group(1) or 1)))
        position = match.end()
    if position < len(text):
        out.append(Segment("text", text[position:]))
    return out


def _merge_text(segments: Sequence[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for segment in segments:
        if segment.kind == "text" and merged and merged[-1].kind == "text":
            merged[-1] = Segment("text", merged[-1].text + segment.text)
        else:
            merged.append(segment)
    return merged


def list_shipped() -> list[str]:
    """Names (``task/name``) of every shipped template."""
    try:
        root = shipped_dir("templates")
    except PromptlearnError:
        return []
    return sorted(f"{p.parent.name}/{p.stem}" for p in root.glob("*/*.j2"))
