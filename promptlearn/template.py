"""Templates: Jinja text with one ``[MASK]`` slot (and optional ``[SOFT]`` slots), rendered safely.

A template is rendered into a :class:`Prompt`, a sequence of :class:`Segment` objects, so that the
scorer knows which characters came from the example (and may be shortened to fit the model's window)
and which are the template's own words, the mask or soft slots (which are never cut).
This module imports neither torch nor transformers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2
import jinja2.meta
import jinja2.nodes
from jinja2.sandbox import SandboxedEnvironment

from .errors import MissingFieldError, PromptlearnError, TemplateError
from .resources import shipped_dir

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
    :mod:`promptlearn.demonstrations`) carry the demonstration's pool index there (its label word is
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


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,  # the header comment on line 1 leaves no blank first line
        autoescape=False,
    )
    env.filters["rstrip_punct"] = _rstrip_punct
    env.filters["lcfirst"] = _lcfirst
    env.filters["_segment"] = _mark_segment
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
        self.shortenable = frozenset(shortenable) if shortenable is not None else None
        if self.shortenable is not None and not self.shortenable <= self.fields:
            unknown = sorted(self.shortenable - self.fields)
            raise TemplateError(f"{where}: shortenable field(s) {unknown} are not used by the template "
                                f"(its fields: {sorted(self.fields)})")
        self._block_fields: list[frozenset[str]] = []
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

    def _reads(self, node: jinja2.nodes.Node, aliases: dict[str, set[str]]) -> set[str]:
        names = {n.name for n in ([node] if isinstance(node, jinja2.nodes.Name) else node.find_all(jinja2.nodes.Name))}
        return {n for n in names if n in self.fields}.union(*(aliases.get(n, set()) for n in names))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, *, shortenable: Iterable[str] | None = None) -> Template:
        path = Path(path)
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateError(f"template file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"cannot read template file {path}: {exc}") from None
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
        try:
            rendered = self._compiled.render(**example)
        except jinja2.UndefinedError as exc:
            raise MissingFieldError(f"{self.where}: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"{self.where}: unsafe operation blocked by the sandbox: {exc}") from None
        except Exception as exc:  # any error raised while evaluating the template's expressions
            raise TemplateError(f"{self.where}: rendering failed: {type(exc).__name__}: {exc}") from None
        segments = self._split(rendered)
        n_masks = sum(s.kind == "mask" for s in segments)
        if n_masks != 1:
            raise TemplateError(
                f"{self.where}: rendered prompt has {n_masks} [MASK] slots, expected exactly one"
            )
        return Prompt(segments, self.shortenable)

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
