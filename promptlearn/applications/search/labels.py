"""Label-word search for a fixed template: LM-BFF's and PETAL's ways of choosing words from the vocabulary.

* **LM-BFF** (Gao et al., 2021): for each class, the ``top_k`` words with the highest summed log-probability
  at the mask over that class's training examples; combinations (one word per class) are then pruned by
  zero-shot dev accuracy (all of them when there are few, else a beam over the classes).
* **PETAL** (Schick et al., 2020): words ranked by the likelihood ratio
  ``log p(word | the class's examples) - log p(word | all examples)``, where ``p(word | examples)`` is the
  word's mean probability at the mask over those examples, smoothed with ``1 / |V|`` so that words the
  model never predicts do not win on a ratio of two tiny numbers; combinations are pruned the same way,
  and with ``words_per_class > 1`` the top words of each class also form one several-words verbalizer.

Candidates are whole-word vocabulary tokens (see :mod:`promptlearn.applications.search.vocabulary`), plus the class
names and any ``candidate_words`` given, which may be several tokens long (scored exactly, as
:meth:`~promptlearn.scorer.Scorer.word_log_probs` does).
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.calibration import content_free_examples
from ...core.errors import DataError
from ...scorer import aggregate_words
from ...core.template import Template
from ...core.verbalizer import Verbalizer
from .results import Candidate
from .scoring import accuracies, evaluate_assignments
from .vocabulary import whole_word_ids

RANKINGS = ("lm-bff", "petal")


@dataclass
class LabelSearch:
    """The label-word candidates for one template, and each class's ranked words under both rankings."""

    template: str
    candidates: list[Candidate]
    rankings: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)


def class_name_words(classes: Sequence[str]) -> dict[str, list[str]]:
    """Class names usable as label words (``not_entailment`` -> ``not entailment``); others are skipped."""
    out = {}
    for name in classes:
        text = re.sub(r"[_\-]+", " ", str(name)).strip()
        if text and all(part.isalpha() for part in text.split()):
            out[str(name)] = [text]
    return out


def _extra_words(classes: Sequence[str], candidate_words: Any, use_class_names: bool) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {c: [] for c in classes}
    if use_class_names:
        for c, words in class_name_words(classes).items():
            extra[c].extend(words)
    if isinstance(candidate_words, Mapping):
        unknown = [str(c) for c in candidate_words if str(c) not in extra]
        if unknown:
            raise DataError(f"candidate_words names class(es) {unknown} that the data does not have; its classes: "
                            f"{list(classes)}")
        for c, words in candidate_words.items():
            extra[str(c)].extend([words] if isinstance(words, str) else list(words))
    elif candidate_words:
        for c in classes:
            extra[c].extend(candidate_words)
    return {c: list(dict.fromkeys(w.strip() for w in words if w and w.strip())) for c, words in extra.items()}


def best_assignments(dev_words: np.ndarray, cf_words: np.ndarray, gold: np.ndarray, lists: Sequence[Sequence[int]],
                     n: int, *, max_combinations: int = 4096, beam: int = 32) -> list[tuple[tuple[int, ...], float,
                                                                                              float, float]]:
    """The ``n`` best one-word-per-class assignments (distinct words) by zero-shot dev score.

    Every combination is tried when there are at most ``max_combinations``; otherwise a beam over the
    classes in order, each partial assignment completed with every later class's best-ranked free word.
    Returns ``(assignment, accuracy, calibrated accuracy, log-likelihood)`` tuples, best first.
    """
    def evaluate(assignments: list[tuple[int, ...]]) -> list[tuple[tuple[int, ...], float, float, float]]:
        if not assignments:
            return []
        acc, cal, ll = evaluate_assignments(dev_words, cf_words, gold, np.asarray(assignments, dtype=np.int64))
        order = sorted(range(len(assignments)), key=lambda i: (-max(acc[i], cal[i]), -ll[i], i))
        return [(assignments[i], float(acc[i]), float(cal[i]), float(ll[i])) for i in order]

    if math.prod(len(words) for words in lists) <= max_combinations:
        combos = [c for c in itertools.product(*lists) if len(set(c)) == len(c)]
        return evaluate(combos)[:n]
    partials: list[tuple[int, ...]] = [()]
    for c in range(len(lists)):
        expansions = list(dict.fromkeys(p + (w,) for p in partials for w in lists[c] if w not in p))
        completed, origin = [], []
        for p in expansions:
            full = _complete(p, lists)
            if full is not None:
                completed.append(full)
                origin.append(p)
        ranked = evaluate(completed)
        position = {a: i for i, a in enumerate(completed)}
        kept = list(dict.fromkeys(origin[position[a]] for a, *_ in ranked))
        partials = kept[:beam] if c < len(lists) - 1 else kept
    return evaluate(list(dict.fromkeys(partials)))[:n]


def _complete(partial: tuple[int, ...], lists: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
    out = list(partial)
    for words in lists[len(partial):]:
        free = next((w for w in words if w not in out), None)
        if free is None:
            return None
        out.append(free)
    return tuple(out)


def search_label_words(scorer: Any, template: Template, classes: Sequence[str], train: tuple[list, np.ndarray],
                       dev: tuple[list, np.ndarray], *, top_k: int = 10, n_sets: int = 5, words_per_class: int = 1,
                       candidate_words: Any = None, use_class_names: bool = True,
                       content_free: Sequence[str] = ("N/A", "", "[MASK]"), rankings: Sequence[str] = RANKINGS,
                       max_combinations: int = 4096, beam: int = 32) -> LabelSearch:
    """Label-word candidates for ``template`` (see the module's description), scored zero-shot on ``dev``.

    ``train`` and ``dev`` are ``(examples, class indices)``; ``classes`` names the classes in index order.
    """
    start = time.perf_counter()
    train_examples, train_gold = train
    dev_examples, dev_gold = dev
    n_classes = len(classes)
    train_prompts = [template.render(e) for e in train_examples]
    vocab = scorer.vocabulary_log_probs(train_prompts).double().numpy()  # [N, V]
    anchor, separator = scorer.mask_context(train_prompts[0])
    words = whole_word_ids(scorer.tokenizer, vocab.shape[1], anchor, separator)
    ids = np.array(sorted(words), dtype=np.int64)
    extra = _extra_words(classes, candidate_words, use_class_names)
    extra_list = list(dict.fromkeys(w for c in classes for w in extra[c] if w not in words.values()))
    # Per-word log-probabilities on the training prompts: whole-word tokens from the vocabulary pass,
    # the extra (possibly multi-token) words scored exactly.
    table_words = [words[int(i)] for i in ids] + extra_list
    train_lp = vocab[:, ids]
    if extra_list:
        train_lp = np.concatenate([train_lp, scorer.word_log_probs(train_prompts, extra_list)], axis=1)
    members = [np.flatnonzero(train_gold == c) for c in range(n_classes)]
    sums = np.stack([train_lp[m].sum(axis=0) for m in members])  # [C, W]
    probs = np.exp(train_lp)
    eps = 1.0 / vocab.shape[1]
    ratio = np.stack([np.log(probs[m].mean(axis=0) + eps) for m in members]) - np.log(probs.mean(axis=0) + eps)
    class_mean = np.stack([probs[m].mean(axis=0) for m in members])
    index_of = {w: i for i, w in enumerate(table_words)}
    forced = [[index_of[w] for w in extra[c]] for c in classes]
    ranked: dict[str, list[list[int]]] = {}
    if "lm-bff" in rankings:
        ranked["lm-bff"] = [list(np.lexsort((np.arange(len(table_words)), -sums[c]))) for c in range(n_classes)]
    if "petal" in rankings:
        ranked["petal"] = [list(np.lexsort((np.arange(len(table_words)), -class_mean[c], -ratio[c])))
                           for c in range(n_classes)]
    lists = {name: [list(dict.fromkeys([int(i) for i in order[c][:top_k]] + forced[c])) for c in range(n_classes)]
             for name, order in ranked.items()}
    several = (_several_words(ranked["petal"], table_words, classes, words_per_class)
               if words_per_class > 1 and "petal" in ranked else None)
    used = sorted({i for per_class in lists.values() for words_ in per_class for i in words_}
                  | {index_of[w] for words_ in (several or {}).values() for w in words_})
    column = {i: k for k, i in enumerate(used)}
    dev_prompts = [template.render(e) for e in dev_examples]
    cf_prompts = [template.render(e) for e in content_free_examples(template.fields, content_free)]
    scored = scorer.word_log_probs(dev_prompts + cf_prompts, [table_words[i] for i in used])
    dev_words, cf_words = scored[:len(dev_prompts)], scored[len(dev_prompts):]
    found: list[tuple[dict[str, list[str]], str, float, float, float]] = []
    for name, per_class in lists.items():
        columns = [[column[i] for i in words_] for words_ in per_class]
        for assignment, acc, cal, ll in best_assignments(dev_words, cf_words, dev_gold, columns, n_sets,
                                                         max_combinations=max_combinations, beam=beam):
            mapping = {classes[c]: [table_words[used[k]]] for c, k in enumerate(assignment)}
            found.append((mapping, f"labels:{name}", acc, cal, ll))
    if several is not None:
        verbalizer = Verbalizer(several)
        cols = [column[index_of[w]] for c in classes for w in several[c]]
        acc, cal, ll = accuracies(aggregate_words(dev_words[:, cols], verbalizer)[None],
                                  aggregate_words(cf_words[:, cols], verbalizer)[None], dev_gold)
        found.append((several, "labels:petal", float(acc[0]), float(cal[0]), float(ll[0])))
    seconds = (time.perf_counter() - start) / max(len(found), 1)
    candidates = [Candidate(template.source, mapping, source, acc, cal, ll, seconds=seconds)
                  for mapping, source, acc, cal, ll in found]
    report = {name: {classes[c]: [(table_words[i], round(float((sums if name == "lm-bff" else ratio)[c, i]), 4))
                                  for i in order[c][:top_k]] for c in range(n_classes)}
              for name, order in ranked.items()}
    return LabelSearch(template.source, candidates, report)


def _several_words(order: list[list[int]], table_words: list[str], classes: Sequence[str],
                   per_class: int) -> dict[str, list[str]] | None:
    """The top ``per_class`` words of each class, no word in two classes (earlier classes choose first)."""
    taken: set[str] = set()
    mapping = {}
    for c, name in enumerate(classes):
        chosen = []
        for i in order[c]:
            word = table_words[int(i)]
            if word not in taken:
                chosen.append(word)
                taken.add(word)
            if len(chosen) == per_class:
                break
        if not chosen:
            return None
        mapping[name] = chosen
    return mapping
