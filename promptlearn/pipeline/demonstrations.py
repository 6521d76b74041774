"""In-context demonstrations: LM-BFF demonstrations for masked LMs, k-shot context for causal LMs.

A demonstration is the template rendered for a labelled pool example with its ``[MASK]`` replaced by
the first label word of the example's class; its segments carry the pool index
(:attr:`Segment.demo <promptlearn.core.template.Segment>`), so truncation can shorten or drop
demonstrations before it touches the example's own fields.

Placement (:func:`assemble`):

* **Masked LMs (LM-BFF)**: the example's prompt first, then the demonstrations, each preceded by the
  separator (default: the tokenizer's separator token and a space, ``"[SEP] "`` / ``"</s> "``, so the
  input reads ``[CLS] example [SEP] demo_1 [SEP] demo_2 [SEP]`` as in LM-BFF).
* **Causal LMs**: the demonstrations first, each followed by the separator (default ``"\\n\\n"``), then the
  example's prompt. With a chat template, ``demonstrations + example up to the mask`` is the user's
  message and the label word is scored as the start of the assistant's reply. The demonstrations (and
  the chat template's opening) are the prompt's shared *context* (:attr:`Prompt.context`), whose
  key-value cache the causal scorer reuses for every prompt with the same context.

Selection (:class:`DemonstrationSelector`; ``k`` = demonstrations **per class**):

* ``random``: masked LMs: ``k`` per class drawn at random for every example (LM-BFF), in class order;
  causal LMs: one fixed set of ``k × n_classes`` pool examples drawn at random from the whole pool (the
  classes as they come), in random order, shared by every example (so its cache is reused).
* ``balanced``: exactly ``k`` per class; causal LMs: one fixed set, in random order; masked LMs: as
  ``random``.
* ``similar``: for every example, each class's pool examples are ranked by cosine similarity of their
  sentence embeddings (mean-pooled all-MiniLM-L6-v2 by default) to the example's, and ``k`` are drawn from
  the top half of that class (LM-BFF's ``demo_filter_rate``); masked LMs: class order; causal LMs: least
  similar first, so the most similar sits right before the example (KATE's order).

Every draw is seeded by ``(seed, set index[, the example's text])``, so it does not depend on which other
examples are scored with it. An example never gets itself (a pool example with the same field values)
as a demonstration: in a fixed set it is replaced by the next pool example the seeded permutation gives
(of its class for ``balanced``). Several demonstration sets (set indices 0..n-1) are ensembled by the
classifier.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.errors import ChatTemplateError, DemonstrationError, UnknownLabelError
from ..core.template import Prompt, Segment, Template
from ..core.verbalizer import Verbalizer

SELECTIONS = ("random", "balanced", "similar")
TOP_FRACTION = 0.5  # LM-BFF samples similar demonstrations from the top 50 % of each class
CAUSAL_SEPARATOR = "\n\n"
_PLACEHOLDER = "PROMPTLEARN_MESSAGE_PLACEHOLDER"


# -- the pool -----------------------------------------------------------------------------------------
def example_key(example: Mapping[str, Any], fields: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """What makes two examples the same example: their template fields' values, as text."""
    return tuple((name, str(example[name])) for name in sorted(fields))


def _stable_int(key: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).digest()[:8], "big")


def read_pool(pool: Any, template: Template, verbalizer: Verbalizer) -> tuple[list[dict[str, Any]], list[int]]:
    """The labelled pool as (examples restricted to the template's fields, class indices), checked.

    ``pool`` is ``(X, y)`` (X: strings, dicts, a DataFrame or a ``datasets.Dataset``; y: class names or
    indices) or a dict ``{"examples": [...], "labels": [...]}`` as :func:`pool_to_json` writes it.
    """
    from ..core.inputs import as_examples

    if isinstance(pool, Mapping):
        if "examples" not in pool or "labels" not in pool:
            raise DemonstrationError("a demonstration pool given as a dict needs the keys 'examples' and 'labels'")
        X, y = pool["examples"], pool["labels"]
    elif isinstance(pool, (tuple, list)) and len(pool) == 2:
        X, y = pool
    else:
        raise DemonstrationError("the demonstration pool must be (X, y): the pool's examples and their labels")
    fields = sorted(template.fields)
    examples = as_examples(X, fields)
    y = list(y) if not hasattr(y, "tolist") else list(y.tolist())
    if len(y) != len(examples):
        raise DemonstrationError(f"the demonstration pool has {len(examples)} examples but {len(y)} labels")
    for position, example in enumerate(examples):
        missing = [f for f in fields if f not in example or example[f] is None
                   or (isinstance(example[f], float) and example[f] != example[f])]
        if missing:
            raise DemonstrationError(f"demonstration pool example {position} lacks the template field(s) {missing} "
                                     f"(it has {sorted(example)}); the pool needs the fields {fields}")
    try:
        labels = verbalizer.label_indices(y)
    except UnknownLabelError as exc:
        raise DemonstrationError(f"demonstration pool: {exc}") from None
    absent = [c for i, c in enumerate(verbalizer.classes) if i not in set(labels)]
    if absent:
        raise DemonstrationError(f"the demonstration pool has no example of class(es) {absent}; every class needs "
                                 "at least one (LM-BFF shows one demonstration per class)")
    return [{f: example[f] for f in fields} for example in examples], [int(label) for label in labels]


def pool_to_json(examples: Sequence[Mapping[str, Any]], labels: Sequence[int], verbalizer: Verbalizer) -> dict:
    """The pool as JSON data (class names for labels; values that are not JSON scalars as text)."""
    def value(v: Any) -> Any:
        return v if isinstance(v, (str, bool, int, float)) and not isinstance(v, np.generic) else str(v)

    return {"examples": [{k: value(v) for k, v in example.items()} for example in examples],
            "labels": [verbalizer.classes[label] for label in labels]}


# -- rendering ------------------------------------------------------------------------------------------
def render_demonstration(template: Template, example: Mapping[str, Any], label_word: str,
                         index: int) -> tuple[Segment, ...]:
    """The template rendered for a pool example, its mask replaced by ``label_word``, every segment marked
    with the pool ``index``."""
    prompt = template.render(example)
    return tuple(dataclasses.replace(s, kind="text", text=label_word, demo=index) if s.kind == "mask"
                 else dataclasses.replace(s, demo=index) for s in prompt.segments)


def chat_wrapper(tokenizer: Any, where: str = "this model") -> tuple[str, str]:
    """(opening, closing): the chat template's text before and after one user message, with the generation
    prompt (the assistant's turn) at the end. A BOS the tokenizer adds on its own is not written twice."""
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError(f"chat_template=True, but the tokenizer of {where} has no chat template; use an "
                                "instruct model's tokenizer, or set chat_template=False")
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": _PLACEHOLDER}], tokenize=False,
                                             add_generation_prompt=True)
    except Exception as exc:  # a template that raises for a plain user message
        raise ChatTemplateError(f"the chat template of {where} failed on a user message: {exc}") from None
    if not isinstance(text, str) or text.count(_PLACEHOLDER) != 1:
        raise ChatTemplateError(f"cannot tell where the user's message goes in the chat template of {where}")
    head, _, tail = text.partition(_PLACEHOLDER)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and head.startswith(bos):
        probe = tokenizer("x", add_special_tokens=True)["input_ids"]
        if probe and probe[0] == tokenizer.bos_token_id:
            head = head[len(bos):]
    return head, tail


def assemble(query: Prompt, demonstrations: Sequence[Sequence[Segment]], *, demos_first: bool, separator: str,
             chat: tuple[str, str] | None = None) -> Prompt:
    """One prompt from the example's prompt and its rendered demonstrations (see the module's docstring)."""
    if not demos_first:
        if chat is not None:
            raise ChatTemplateError("a chat template needs a causal LM (demonstrations before the example)")
        segments = list(query.segments)
        for demo in demonstrations:
            segments.append(Segment("text", separator, demo=demo[0].demo))
            segments.extend(demo)
        return Prompt(tuple(segments), query.shortenable)
    context: list[Segment] = []
    if chat is not None and chat[0]:
        context.append(Segment("text", chat[0]))
    for demo in demonstrations:
        context.extend(demo)
        context.append(Segment("text", separator, demo=demo[0].demo))
    own = list(query.segments)
    if chat is not None:
        index = query.mask_index()
        before = own[:index]
        if before and before[-1].kind == "text":
            before[-1] = dataclasses.replace(before[-1], text=before[-1].text.rstrip())
        own = before + [Segment("text", chat[1])] + own[index:]
    return Prompt(tuple(context + own), query.shortenable, context=len(context))


# -- similarity -------------------------------------------------------------------------------------------
class SentenceEncoder:
    """Sentence embeddings for ``similar`` selection: the mean-pooled last hidden states of an encoder
    (``minilm``, all-MiniLM-L6-v2, by default), computed by :class:`~promptlearn.models.encoder.FrozenEncoder`
    (the features :class:`~promptlearn.ProbeClassifier` classifies). Loaded on first use. Any callable
    ``texts -> array [n, d]`` can stand in for it."""

    def __init__(self, model: Any = "minilm", *, device: str | None = None, batch_size: int = 32,
                 max_length: int = 256) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._encoder: Any = None

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        from ..models.encoder import FrozenEncoder

        if self._encoder is None:
            self._encoder = FrozenEncoder.load(self.model, device=self.device)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self._encoder.features([list(texts)], pooling="mean", max_length=self.max_length,
                                      batch_size=self.batch_size, show_progress=False).cpu().numpy()


def make_encoder(spec: Any, device: str | None = None) -> Callable[[Sequence[str]], np.ndarray]:
    """A sentence encoder from a model name / folder (:class:`SentenceEncoder`) or a callable."""
    if isinstance(spec, (str, os.PathLike)):
        return SentenceEncoder(str(spec), device=device)
    if callable(spec):
        return spec
    raise DemonstrationError("selection='similar' needs an encoder: a model name (e.g. 'minilm'), a folder, "
                             "or a callable that maps texts to vectors")


def _normalise(vectors: Any) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


# -- selection --------------------------------------------------------------------------------------------
class DemonstrationSelector:
    """Chooses the demonstrations (pool indices, in prompt order) of each example for a demonstration set.

    ``k``: demonstrations per class. ``causal``: the placement and selection rules of causal LMs (fixed
    shared sets for ``random`` / ``balanced``; least similar first for ``similar``). ``encoder``: a callable
    ``texts -> vectors`` (``similar`` only). ``top_fraction``: the share of each class, most similar first,
    that ``similar`` draws from. ``classes``: class names, for messages.
    """

    def __init__(self, examples: Sequence[Mapping[str, Any]], labels: Sequence[int], n_classes: int,
                 fields: Sequence[str], *, k: int = 1, selection: str = "random", causal: bool = False, seed: int = 0,
                 encoder: Callable[[Sequence[str]], Any] | None = None, top_fraction: float = TOP_FRACTION,
                 classes: Sequence[str] | None = None) -> None:
        if selection not in SELECTIONS:
            raise DemonstrationError(f"the demonstrations' selection must be one of {SELECTIONS}, got {selection!r}")
        if not 0 < top_fraction <= 1:
            raise DemonstrationError(f"top_fraction must be in (0, 1], got {top_fraction}")
        self.examples, self.labels = list(examples), [int(label) for label in labels]
        self.fields = sorted(fields)
        self.k, self.selection, self.causal, self.seed = int(k), selection, bool(causal), int(seed)
        self.encoder, self.top_fraction = encoder, float(top_fraction)
        self.n_classes = n_classes
        self.by_class = [[i for i, label in enumerate(self.labels) if label == c] for c in range(n_classes)]
        self.keys = [example_key(e, self.fields) for e in self.examples]
        self.fixed = self.causal and selection in ("random", "balanced")
        per_class = not (self.fixed and selection == "random")
        if per_class:
            short = [c for c in range(n_classes) if len(self.by_class[c]) < self.k]
            if short:
                name = repr(classes[short[0]]) if classes is not None else f"index {short[0]}"
                raise DemonstrationError(f"{self.k} demonstration(s) per class, but the pool has only "
                                         f"{len(self.by_class[short[0]])} example(s) of class {name}; lower demos "
                                         "or add pool examples")
        elif len(self.examples) < self.k * n_classes:
            raise DemonstrationError(f"{self.k * n_classes} demonstrations ({self.k} per class), but the pool has "
                                     f"only {len(self.examples)} examples")
        if selection == "similar" and encoder is None:
            raise DemonstrationError("selection='similar' needs a sentence encoder (DemonstrationOptions(encoder=...))")
        self._pool_vectors: np.ndarray | None = None
        self._query_vectors: dict[Any, np.ndarray] = {}

    @property
    def size(self) -> int:
        """Demonstrations per prompt (at most; one fewer of a class when the example itself is in the pool)."""
        return self.k * self.n_classes

    def text(self, example: Mapping[str, Any]) -> str:
        """What the sentence encoder reads of an example: its template fields (sorted by name) joined by spaces."""
        return " ".join(str(example[f]) for f in self.fields)

    def select(self, queries: Sequence[Mapping[str, Any]], set_index: int = 0) -> list[tuple[int, ...]]:
        """The demonstrations of each query (pool indices in prompt order) in demonstration set ``set_index``."""
        keys = [example_key(q, self.fields) for q in queries]
        if self.fixed:
            return [self._fixed(key, set_index) for key in keys]
        if self.selection == "similar":
            vectors = self._vectors(queries, keys)
            return [self._similar(key, vector, set_index) for key, vector in zip(keys, vectors)]
        return [self._per_query(key, set_index) for key in keys]

    def _rng(self, set_index: int, key: Any = None) -> np.random.Generator:
        entropy = [self.seed & (2**63 - 1), int(set_index) & (2**63 - 1)]
        return np.random.default_rng(entropy + ([_stable_int(key)] if key is not None else []))

    def _fixed(self, key: Any, set_index: int) -> tuple[int, ...]:
        """Causal random/balanced: one set per set index; the query's own pool entry is swapped for the next."""
        rng = self._rng(set_index)
        if self.selection == "balanced":
            streams = [list(rng.permutation(members)) for members in self.by_class]
            slots = [c for c in range(self.n_classes) for _ in range(self.k)]
            slots = [slots[i] for i in rng.permutation(len(slots))]
        else:
            streams = [list(rng.permutation(len(self.examples)))]
            slots = [0] * (self.k * self.n_classes)
        positions = [0] * len(streams)
        chosen = []
        for stream_index in slots:
            stream = streams[stream_index]
            while positions[stream_index] < len(stream) and self.keys[stream[positions[stream_index]]] == key:
                positions[stream_index] += 1
            if positions[stream_index] < len(stream):
                chosen.append(int(stream[positions[stream_index]]))
                positions[stream_index] += 1
        return tuple(chosen)

    def _per_query(self, key: Any, set_index: int) -> tuple[int, ...]:
        """Masked random/balanced (LM-BFF): k per class drawn for this query, in class order."""
        rng = self._rng(set_index, key)
        picks = []
        for members in self.by_class:
            candidates = [i for i in members if self.keys[i] != key]
            size = min(self.k, len(candidates))
            picks.append([int(i) for i in rng.choice(candidates, size=size, replace=False)] if size else [])
        return self._class_order(picks)

    def _class_order(self, picks: list[list[int]]) -> tuple[int, ...]:
        """One of each class in class order, ``k`` rounds."""
        return tuple(p[r] for r in range(self.k) for p in picks if r < len(p))

    def _similar(self, key: Any, vector: np.ndarray, set_index: int) -> tuple[int, ...]:
        rng = self._rng(set_index, key)
        similarity = self._pool_embeddings() @ vector
        picks = []
        for members in self.by_class:
            candidates = sorted((i for i in members if self.keys[i] != key), key=lambda i: (-similarity[i], i))
            top = candidates[:max(self.k, math.ceil(self.top_fraction * len(candidates)))]
            size = min(self.k, len(top))
            picks.append([int(i) for i in rng.choice(top, size=size, replace=False)] if size else [])
        if self.causal:  # least similar first: the most similar demonstration right before the query
            return tuple(sorted((i for p in picks for i in p), key=lambda i: (similarity[i], i)))
        return self._class_order(picks)

    def _embed(self, texts: list[str]) -> np.ndarray:
        assert self.encoder is not None
        vectors = np.asarray(self.encoder(texts))
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise DemonstrationError(f"the sentence encoder returned an array of shape {vectors.shape} for "
                                     f"{len(texts)} texts; it must return one vector per text")
        return _normalise(vectors)

    def _pool_embeddings(self) -> np.ndarray:
        if self._pool_vectors is None:
            self._pool_vectors = self._embed([self.text(e) for e in self.examples])
        return self._pool_vectors

    def _vectors(self, queries: Sequence[Mapping[str, Any]], keys: list[Any]) -> list[np.ndarray]:
        missing = {key: query for key, query in zip(keys, queries) if key not in self._query_vectors}
        if missing:
            vectors = self._embed([self.text(q) for q in missing.values()])
            self._query_vectors.update(zip(missing, vectors))
        return [self._query_vectors[key] for key in keys]
