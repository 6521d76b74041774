"""Verbalizers: each class's label words, as people write them, in class order.

Files are JSON (``{"negative": ["terrible"], "positive": ["great", "good"]}``) or text
(``negative: terrible, awful`` one class a line, ``#`` comments). A class with several words
scores the aggregate of its words' probabilities (``aggregation``: ``mean`` by default, i.e. the
log of the mean word probability; ``max``; or ``sum``). Leading-space conventions of tokenizers
are the scorer's job, never the user's. This module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import numbers
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import UnknownLabelError, VerbalizerError
from .resources import read_text_file, shipped_dir

AGGREGATIONS = ("mean", "max", "sum")
_SHIPPED_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")
INLINE = "inline verbalizer"  # how error messages name a verbalizer given as JSON text


class Verbalizer:
    """Maps each class to one or more label words; the class order is the order given."""

    def __init__(self, label_words: Mapping[str, str | Sequence[str]], *, aggregation: str = "mean",
                 source: str | None = None) -> None:
        where = source or "verbalizer"
        if aggregation not in AGGREGATIONS:
            raise VerbalizerError(f"{where}: aggregation {aggregation!r} is not one of {AGGREGATIONS}")
        if not isinstance(label_words, Mapping) or len(label_words) < 2:
            raise VerbalizerError(f"{where}: needs at least two classes, each with label words, "
                                  f"e.g. {{\"negative\": [\"terrible\"], \"positive\": [\"great\"]}}")
        classes: list[str] = []
        words: list[tuple[str, ...]] = []
        for label, value in label_words.items():
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not items:
                raise VerbalizerError(f"{where}: class {label!r} has no label words")
            cleaned = []
            for word in items:
                if not isinstance(word, str) or not word.strip():
                    raise VerbalizerError(f"{where}: class {label!r} has an empty or non-text label word {word!r}")
                cleaned.append(word.strip())
            if len(set(cleaned)) != len(cleaned):
                raise VerbalizerError(f"{where}: class {label!r} lists a word twice: {cleaned}")
            if str(label) in classes:  # e.g. the keys 1 and "1" of a dict
                raise VerbalizerError(f"{where}: class {str(label)!r} is listed twice; give each class once, "
                                      f"with all its label words")
            classes.append(str(label))
            words.append(tuple(cleaned))
        seen: dict[str, str] = {}
        for label, class_words in zip(classes, words):
            for word in class_words:
                if word in seen:
                    raise VerbalizerError(f"{where}: word {word!r} is used by both {seen[word]!r} and {label!r}")
                seen[word] = label
        self.classes: list[str] = classes
        self.words: list[tuple[str, ...]] = words
        self.aggregation = aggregation
        self.source = source

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, *, aggregation: str = "mean") -> Verbalizer:
        """Read a JSON or ``label: w1, w2`` text file."""
        path = Path(path)
        text = read_text_file(path, "verbalizer file", VerbalizerError)
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            mapping = _parse_json(text, str(path))
        else:
            mapping = _parse_text(text, str(path))
        return cls(mapping, aggregation=aggregation, source=str(path))

    @classmethod
    def from_json(cls, text: str, *, aggregation: str = "mean") -> Verbalizer:
        """An inline JSON verbalizer such as ``{"0": ["No"], "1": ["Yes"]}`` (what ``--verbalizer`` takes
        besides files and shipped names)."""
        return cls(_parse_json(text, INLINE), aggregation=aggregation, source=INLINE)

    @classmethod
    def load(cls, spec: Verbalizer | Mapping[str, Any] | str | Path, *, aggregation: str | None = None) -> Verbalizer:
        """Verbalizer from an object, a dict, a file path, a shipped name such as ``sst2``, or inline JSON text
        (``{"negative": ["bad"], "positive": ["good"]}``: any string starting with ``{`` that is not a file)."""
        if isinstance(spec, Verbalizer):
            if aggregation is None or aggregation == spec.aggregation:
                return spec
            return cls(spec.to_dict(), aggregation=aggregation, source=spec.source)
        aggregation = aggregation or "mean"
        if isinstance(spec, Mapping):
            return cls(spec, aggregation=aggregation)
        text = str(spec)
        path = Path(text)
        if path.is_file():
            return cls.from_file(path, aggregation=aggregation)
        if text.lstrip().startswith("{"):
            return cls.from_json(text, aggregation=aggregation)
        if _SHIPPED_NAME.match(text):
            shipped = shipped_dir("verbalizers") / f"{text}.json"
            if shipped.is_file():
                return cls.from_file(shipped, aggregation=aggregation)
            raise VerbalizerError(f"no shipped verbalizer {text!r}; available: {', '.join(list_shipped())}")
        if path.suffix or "/" in text:
            raise VerbalizerError(f"verbalizer file not found: {text}")
        raise VerbalizerError(f"verbalizer {text!r} is neither a file, a shipped name such as 'sst2', nor inline JSON "
                              f"such as '{{\"negative\": [\"bad\"], \"positive\": [\"good\"]}}'")

    def to_dict(self) -> dict[str, list[str]]:
        return {label: list(words) for label, words in zip(self.classes, self.words)}

    # -- labels -------------------------------------------------------------------------------
    def label_indices(self, labels: Iterable[Any]) -> list[int]:
        """Class index of each label; a label is a class name, or an integer index in class order (when no
        class name is an integer; :func:`index_labels` says which labels were read that way)."""
        return label_indices(labels, self.classes, where=self.source or "the verbalizer")

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"Verbalizer({self.to_dict()!r}, aggregation={self.aggregation!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verbalizer) and (self.to_dict(), self.aggregation) == (other.to_dict(), other.aggregation)


def label_indices(labels: Iterable[Any], classes: Sequence[str], *, where: str = "the verbalizer") -> list[int]:
    """Class index of each label in ``classes``: a class name, or an integer index in class order when no class
    name is itself an integer (:func:`index_labels` lists the labels read that way); anything else is an
    :class:`UnknownLabelError` naming ``where`` the classes come from."""
    index = {str(c): i for i, c in enumerate(classes)}
    out = []
    for position, label in enumerate(labels):
        found = _label_index(label, index)
        if found is None:
            raise UnknownLabelError(f"label {label!r} (item {position}) is not a class of {where}; classes: "
                                    f"{list(classes)} (or their indices 0..{len(classes) - 1})")
        out.append(found)
    return out


def _label_index(label: Any, index: Mapping[str, int]) -> int | None:
    """The class index of one label (``index``: class name -> index), or None when it names no class: a class
    name, else an integer read as an index in class order when no class name is itself an integer."""
    key = str(label)
    if key in index:
        return index[key]
    if is_int(label) and 0 <= int(label) < len(index) and not any(is_int(c) for c in index):
        return int(label)
    return None


def index_labels(labels: Iterable[Any], classes: Sequence[str]) -> dict[str, str]:
    """The labels read as class indices rather than class names, each with the class it stands for
    (``{"0": "negative", "1": "positive"}``, sorted by index); empty when every label names its class.

    Integer labels silently take the verbalizer's class order, so a data set whose 0 means "positive"
    would be scored inverted against a ``negative, positive`` verbalizer: callers show this mapping."""
    index = {str(c): i for i, c in enumerate(classes)}
    used = {}
    for label in labels:
        if str(label) not in index:
            found = _label_index(label, index)
            if found is not None:
                used[int(label)] = str(classes[found])
    return {str(number): used[number] for number in sorted(used)}


def is_int(value: Any) -> bool:
    """Whether a label is an integer (or a digit string): read as a class index."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


class _DuplicateKey(Exception):
    """A JSON object names a key twice (``json`` would silently keep the last)."""


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _parse_json(text: str, where: str) -> dict[str, Any]:
    """A JSON verbalizer's class -> words object (a class named twice is an error, not silently merged)."""
    try:
        mapping = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as exc:
        raise VerbalizerError(f"{where}: class {exc.args[0]!r} is listed twice; give each class once, with "
                              f"all its label words") from None
    except json.JSONDecodeError as exc:
        raise VerbalizerError(f"{where}: invalid JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(mapping, dict):
        raise VerbalizerError(f"{where}: the JSON must be an object mapping each class to its words")
    return mapping


def _parse_text(text: str, where: str) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        label, colon, rest = line.partition(":")
        if not colon or not label.strip():
            raise VerbalizerError(f"{where}, line {number}: expected 'label: word1, word2', got {raw.strip()!r}")
        words = [w.strip() for w in rest.split(",")]
        if not all(words):
            raise VerbalizerError(f"{where}, line {number}: empty label word in {raw.strip()!r}")
        if label.strip() in mapping:
            raise VerbalizerError(f"{where}, line {number}: class {label.strip()!r} is listed twice")
        mapping[label.strip()] = words
    return mapping


def list_shipped() -> list[str]:
    """Names of every shipped verbalizer."""
    return sorted(p.stem for p in shipped_dir("verbalizers").glob("*.json"))
