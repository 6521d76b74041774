"""Template generators that need no extra model: a seed pool of patterns, and infilling with the model itself.

**Infilling** (LM-BFF's template generation, with the classifier's own model in place of T5). Each
training example is written with its class's label word and blank slots around it, e.g.
``<text> [m] [m] great [m]`` (after the text), ``[m] great [m] <text>`` (before it) or
``<text a> [m] great [m] <text b>`` (between two fields). A masked LM fills the slots jointly for all
examples: at each step the (slot, token) pair with the highest log-probability summed over the examples
is filled (most confident first, as PET decodes), keeping a beam of partial fillings. The filled words
around the label word become the template's words, e.g. ``{{ text }} It was [MASK].``

A causal LM cannot fill blanks, so with a causal LM the model writes the words *between the example
and the label word*: a beam search over the next tokens after the text (summed over the examples), each
finished candidate re-ranked by adding log p(label word | text, words) of the examples' own classes.
The templates end with the mask, as causal LMs need (``{{ text }} All in all, it was [MASK]``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ...core.errors import DataError
from ...scorer import Piece, vocabulary_size
from ...core.template import Prompt, Segment
from ...models.distributed import show_progress as progress_shown
from .scoring import Budget
from .vocabulary import is_continuation, template_token_ids, tidy

_SINGLE_SEEDS = (
    "BODY It was [MASK].", "BODY This is [MASK].", "BODY A [MASK] one.", "BODY All in all, it was [MASK].",
    "BODY In summary, it was [MASK].", "BODY It is [MASK].", "[MASK]: BODY", "[MASK] - BODY", "BODY ([MASK])",
    "Text: BODY\nLabel: [MASK]", "BODY\nAnswer: [MASK]",
)
_PAIR_SEEDS = (
    "{{ A | rstrip_punct }}? [MASK], {{ B | lcfirst }}", "{{ A }} [MASK], {{ B }}",
    "{{ A }} Question: {{ B }}? Answer: [MASK].", "{{ A }}\nQuestion: {{ B }}?\nAnswer: [MASK]",
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_fields(fields: Sequence[str]) -> None:
    bad = [f for f in fields if not _IDENTIFIER.match(f)]
    if bad:
        raise DataError(f"field name(s) {bad} cannot be used in a template; rename the columns to letters, digits "
                        "and '_' (e.g. --column text=COLUMN)")


def body(fields: Sequence[str]) -> str:
    """The example's fields in order, as Jinja."""
    return " ".join("{{ " + f + " }}" for f in fields)


def mask_last(source: str) -> bool:
    """Whether nothing but punctuation follows ``[MASK]`` (what causal LMs need)."""
    return "[MASK]" in source and re.fullmatch(r"[\s.!?]*", source.split("[MASK]", 1)[1]) is not None


def seed_templates(fields: Sequence[str], kind: str = "masked") -> list[str]:
    """The built-in pattern pool for these fields (PET / LM-BFF patterns and causal-LM ``Label: [MASK]`` forms).

    Two fields also get LM-BFF's NLI patterns; for causal LMs only patterns that end with the mask are kept.
    """
    check_fields(fields)
    out = [s.replace("BODY", body(fields)) for s in _SINGLE_SEEDS]
    if len(fields) == 2:
        a, b = fields
        out = [s.replace("{{ A", "{{ " + a).replace("{{ B", "{{ " + b) for s in _PAIR_SEEDS] + out
    return [s for s in out if kind == "masked" or mask_last(s)]


@dataclass(frozen=True)
class Shape:
    """Where the blanks go: ``layout`` ``after`` (the text), ``before`` (it) or ``between`` (two fields);
    ``left`` blanks before the label word, ``right`` blanks after it."""

    layout: str
    left: int
    right: int


def default_shapes(fields: Sequence[str]) -> list[Shape]:
    shapes = [Shape("after", 1, 1), Shape("after", 2, 1), Shape("after", 3, 1), Shape("after", 2, 0),
              Shape("before", 0, 1), Shape("before", 1, 1), Shape("before", 2, 1)]
    if len(fields) == 2:
        shapes = [Shape("between", 0, 1), Shape("between", 1, 1), Shape("between", 2, 0),
                  Shape("between", 2, 1)] + shapes[:3]
    return shapes


# -- masked LMs ----------------------------------------------------------------------------------

def _rows_for_shape(scorer: Any, shape: Shape, examples: Sequence[dict], fields: Sequence[str],
                    words: Sequence[str]) -> list[list[Piece]]:
    mask = scorer.tokenizer.mask_token
    rows = []
    for example, word in zip(examples, words):
        fields_ = [Piece(scorer._clean_field(str(example[f])), True) for f in fields]
        slots = " ".join([mask] * shape.left + [word] + [mask] * shape.right)
        if shape.layout == "between":
            rows.append([fields_[0], Piece(" " + slots + " "), fields_[1]])
        else:
            text = [p for k, f in enumerate(fields_) for p in ([Piece(" ")] if k else []) + [f]]
            rows.append(text + [Piece(" " + slots)] if shape.layout == "after" else [Piece(slots + " ")] + text)
    return rows


def _summed(scorer: Any, encoded: list[list[int]], positions: list[list[int]], fills: tuple[int, ...],
            remaining: list[int]) -> np.ndarray:
    """log-probabilities ``[len(remaining), V]`` at the remaining slots, summed over the examples."""
    total = None
    for start in range(0, len(encoded), scorer.batch_size):
        chunk = range(start, min(start + scorer.batch_size, len(encoded)))
        rows = []
        for i in chunk:
            row = list(encoded[i])
            for s, token in enumerate(fills):
                if token >= 0:
                    row[positions[i][s]] = token
            rows.append(row)
        ids, attention = scorer._pad(rows)
        row_index = [r for r in range(len(rows)) for _ in remaining]
        cols = [positions[i][s] for i in chunk for s in remaining]
        log_probs, _ = scorer._log_probs_at({"input_ids": ids, "attention_mask": attention}, row_index, cols)
        part = log_probs.double().cpu().numpy().reshape(len(rows), len(remaining), -1).sum(axis=0)
        total = part if total is None else total + part
    return total  # type: ignore[return-value]


def _source(shape: Shape, fields: Sequence[str], left: str, right: str) -> str:
    middle = f"{left} [MASK] {right}"
    if shape.layout == "between":
        return tidy("{{ " + fields[0] + " }} " + middle + " {{ " + fields[1] + " }}")
    if shape.layout == "after":
        return tidy(body(fields) + " " + middle)
    return tidy(middle + " " + body(fields))


def infill_masked(scorer: Any, examples: Sequence[dict], words: Sequence[str], fields: Sequence[str], *,
                  shapes: Sequence[Shape] | None = None, beam: int = 3, budget: Budget | None = None,
                  forbidden: Sequence[str] = (), show_progress: bool | None = None) -> list[tuple[str, float]]:
    """Templates written by a masked LM around each example's label word (``words[i]`` for example i).

    Returns ``(template source, summed log-probability of its words)`` pairs, ``beam`` per shape at most.
    """
    tokenizer = scorer.tokenizer
    check_fields(fields)
    shapes = list(shapes or default_shapes(fields))
    forbidden_lower = {w.lower() for w in forbidden}
    results: list[tuple[str, float]] = []
    show = progress_shown(scorer.show_progress if show_progress is None else show_progress)
    vocab_size = vocabulary_size(scorer.model)
    texts = template_token_ids(tokenizer, vocab_size)
    allowed = np.zeros(vocab_size, dtype=bool)
    allowed[[t for t, text in texts.items() if text.strip().lower() not in forbidden_lower]] = True
    starts = allowed.copy()  # a slot right after the text or the label word cannot take a "##" piece
    starts[[t for t in np.flatnonzero(allowed) if is_continuation(tokenizer, t)]] = False
    with torch.inference_mode(), tqdm(total=len(shapes), desc="infilling", disable=not show) as bar:
        for shape in shapes:
            if budget is not None and budget.expired():
                break
            if shape.layout == "between" and len(fields) != 2:
                bar.update(1)
                continue
            n_slots = shape.left + shape.right
            encoded = scorer._encode(_rows_for_shape(scorer, shape, examples, fields, words),
                                     [scorer.max_length] * len(examples), True,
                                     [f"training example {i}" for i in range(len(examples))])
            positions = [[t for t, token in enumerate(row) if token == tokenizer.mask_token_id] for row in encoded]
            keep = [i for i, p in enumerate(positions) if len(p) == n_slots]
            if not keep or n_slots == 0:
                bar.update(1)
                continue
            encoded, positions = [encoded[i] for i in keep], [positions[i] for i in keep]
            beams: list[tuple[tuple[int, ...], float]] = [((-1,) * n_slots, 0.0)]
            for _ in range(n_slots):
                expansions: dict[tuple[int, ...], float] = {}
                for fills, total in beams:
                    remaining = [s for s in range(n_slots) if fills[s] < 0]
                    summed = _summed(scorer, encoded, positions, fills, remaining)
                    for r, s in enumerate(remaining):
                        starts_word = s in (0, shape.left) or fills[s - 1] < 0
                        summed[r, ~(starts if starts_word else allowed)] = -np.inf
                    flat = summed.ravel()
                    top = np.lexsort((np.arange(flat.size), -flat))[:beam]
                    for index in top:
                        if not np.isfinite(flat[index]):
                            continue
                        r, token = divmod(int(index), summed.shape[1])
                        new = list(fills)
                        new[remaining[r]] = token
                        key = tuple(new)
                        expansions[key] = max(expansions.get(key, -np.inf), total + float(flat[index]))
                beams = sorted(expansions.items(), key=lambda item: (-item[1], item[0]))[:beam]
            for fills, total in beams:
                left = tokenizer.decode(list(fills[:shape.left])).strip()
                right = tokenizer.decode(list(fills[shape.left:])).strip()
                results.append((_source(shape, fields, left, right), total))
            bar.update(1)
    return results


# -- causal LMs ----------------------------------------------------------------------------------

def _body_segments(example: dict, fields: Sequence[str]) -> list[Segment]:
    out: list[Segment] = []
    for k, f in enumerate(fields):
        if k:
            out.append(Segment("text", " "))
        out.append(Segment("field", str(example[f]), frozenset({f})))
    return out


def _prompt(example: dict, fields: Sequence[str], text: str) -> Prompt:
    segments = _body_segments(example, fields) + ([Segment("text", text)] if text else []) + [Segment("mask")]
    return Prompt(tuple(segments))


def _before_mask(text: str) -> str:
    """The generated words as they stand before ``[MASK]`` in the template (a space, unless after a newline)."""
    words = text.rstrip(" ")
    return words if words.endswith("\n") else words + " "


def infill_causal(scorer: Any, examples: Sequence[dict], labels: Sequence[int], verbalizer_words: Sequence[str],
                  fields: Sequence[str], *, max_tokens: int = 4, beam: int = 3, budget: Budget | None = None,
                  forbidden: Sequence[str] = (), show_progress: bool | None = None) -> list[tuple[str, float]]:
    """Templates whose words a causal LM writes between the example and the label word.

    ``verbalizer_words[c]`` is class c's label word, ``labels[i]`` example i's class. A beam search over the
    next token after the text (log-probabilities summed over the examples) gives candidates of 1 to
    ``max_tokens`` tokens; each is ranked by its words' summed log-probability plus the examples' own label
    words' (their first token, read from the same pass that extends the candidate: one pass per beam and
    step, ``beam * (max_tokens + 1)`` passes over the examples in all).
    """
    check_fields(fields)
    tokenizer = scorer.tokenizer
    forbidden_lower = {w.lower() for w in forbidden}
    vocab_size = vocabulary_size(scorer.model)
    token_text = template_token_ids(tokenizer, vocab_size, allow_newline=True)
    allowed = np.zeros(vocab_size, dtype=bool)
    allowed[[t for t, w in token_text.items() if w.strip().lower() not in forbidden_lower]] = True
    rows = np.arange(len(examples))
    finished: dict[str, float] = {}
    beams: list[tuple[str, float]] = [("", 0.0)]
    show = progress_shown(scorer.show_progress if show_progress is None else show_progress)
    for step in tqdm(range(max_tokens + 1), desc="writing templates", disable=not show):
        if budget is not None and budget.expired():
            break
        expansions: dict[str, float] = {}
        for text, total in beams:
            prompts = [_prompt(e, fields, _before_mask(text) if text.strip() else text) for e in examples]
            log_probs = scorer.vocabulary_log_probs(prompts).double().numpy()
            if text.strip():  # the label words after these words: this pass's next-token distribution
                anchor, separator = scorer.mask_context(prompts[0])
                first = [scorer.word_ids(w, anchor, separator)[0] for w in verbalizer_words]
                finished[text] = total + float(log_probs[rows, [first[y] for y in labels]].sum())
            if step == max_tokens:
                continue
            summed = log_probs.sum(axis=0)
            summed[~allowed[:summed.shape[0]]] = -np.inf
            for token in np.lexsort((np.arange(summed.size), -summed))[:beam]:
                if np.isfinite(summed[token]):
                    new = text + token_text[int(token)]
                    expansions[new] = max(expansions.get(new, -np.inf), total + float(summed[token]))
        beams = sorted(expansions.items(), key=lambda item: (-item[1], item[0]))[:beam]
    results = [(body(fields) + _before_mask(text) + "[MASK]", score) for text, score in finished.items()]
    return sorted(results, key=lambda item: (-item[1], item[0]))
