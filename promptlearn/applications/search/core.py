"""PromptSearch: find templates and label words for a task from a few labelled examples, offline.

Stages (each checks the wall-clock budget between units of work):

1. **labels** -- label-word search (LM-BFF and PETAL rankings) on one template: ``template=`` or the
   first seed pattern. Runs for ``method="labels"`` and ``"all"``, and for ``"infill"`` / ``"autoprompt"``
   when no ``verbalizer=`` is given (their templates need label words: the best ones found here).
2. **infill** -- the seed pool plus templates the model writes around the label word (masked LMs) or
   between the text and the label word (causal LMs, which cannot fill blanks).
3. **autoprompt** -- HotFlip trigger tokens.
4. **refine** (``"all"`` only) -- label-word search again on the best two new templates.
5. Every candidate is scored zero-shot on the dev examples (raw and calibrated accuracy); duplicates
   (same rendered text and words) are scored once. Template generation stops at 60 % of the budget
   when short training follows, so the scoring and training have time left.
6. **train** -- the top ``n_train`` candidates are trained briefly (``train_steps`` of prompt-based
   fine-tuning from the same starting weights, restored after each) and scored again on dev.

The ranking puts trained candidates first (by trained accuracy), then the others (by the better of raw
and calibrated zero-shot accuracy); ties go to the higher mean log-probability of the right class.

When a verbalizer is given, the given prompt is the baseline: it is always trained, and it stays first
unless a found prompt beats it on dev by more than ``keep_margin``. Dozens of candidates scored on a few
dozen dev examples make the best dev score an optimistic one: with a weak model the top candidate is
often a lucky fit (reversed or unrelated label words) that does worse on new text than the prompt the
user wrote. The margin asks a found prompt for evidence beyond that luck before replacing it; ``"auto"``
sets it to the luck expected of the best of N candidates, each scored on n dev examples: the standard
deviation of an accuracy near 50 % (0.5 / sqrt(n)) times sqrt(2 ln N), the expected maximum of N
standard normal draws (about 0.25 for N = 55 candidates on n = 32).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ...core.calibration import CONTENT_FREE
from ...core.inputs import as_examples
from ...estimators.options import ScoringOptions
from ...core.errors import ConfigError, DataError, PromptlearnError
from ...models.distributed import show_progress as progress_shown
from ...models.loader import dtype_name, loaded_model
from ...scorer import make_scorer
from ...core.template import Template
from ...core.verbalizer import Verbalizer
from .autoprompt import OBJECTIVES, hotflip
from .labels import search_label_words
from .results import Candidate, SearchResult, rank, write_results
from .scoring import Budget, score_prompt, train_and_score
from .templates import infill_causal, infill_masked, seed_templates

logger = logging.getLogger(__name__)

METHODS = ("all", "labels", "infill", "autoprompt")
GENERATION_SHARE = 0.6


def _class_order(labels: Sequence[Any]) -> list[str]:
    names = sorted({str(label) for label in labels})
    if all(n.lstrip("-").isdigit() for n in names):
        names.sort(key=int)
    return names


class PromptSearch:
    """Discrete search for prompts: templates and label words, scored on dev examples.

    Parameters
    ----------
    model, tokenizer, device, dtype, gguf_file, trust_remote_code, batch_size, max_length, multi_token,
        after_mask, content_free, show_progress: as for :class:`~promptlearn.PromptClassifier`.
    method: ``labels`` (label words for one template), ``infill`` (templates: seed pool + the model's own
        infilling), ``autoprompt`` (HotFlip trigger tokens), or ``all`` (each in turn, then label words
        again for the best new templates).
    template: the template for label search (default: the first seed pattern, ``{{ text }} It was [MASK].``).
    verbalizer: the label words for template search (default: the best found by label search).
    n_templates: how many prompts :meth:`write` writes out.
    budget_minutes: wall-clock budget of :meth:`fit`, model loading excluded.
    top_k_words, label_sets, words_per_class, candidate_words: label search: candidates per class, label
        sets kept per ranking, words per class of the PETAL several-words verbalizer (1: none), extra
        (possibly multi-token) words to consider (a list, or a dict class -> words). Class names are
        always candidates for their class.
    infill_beam, infill_examples, causal_infill_tokens: beam width, training examples used (a seeded
        subset), and the most tokens a causal LM writes.
    n_triggers, autoprompt_iterations, autoprompt_candidates, autoprompt_batch, autoprompt_objective: HotFlip
        settings (trigger words, swaps tried, candidates re-scored per swap, training examples per swap, loss).
    n_train, train_steps, learning_rate, train_batch_size: short prompt-based fine-tuning of the
        ``n_train`` best candidates (default: ``n_templates``), plus the given prompt; ``train_steps=0``
        skips it.
    keep_margin: with a given verbalizer, how much better on dev (accuracy, trained if both were trained,
        else zero-shot) a found prompt must be to rank above the given one: a number (0: no preference),
        or ``"auto"``, the luck of the best of the scored candidates (see above).
    seed: every choice that is random (subsets, HotFlip's slots and batches, training) follows it.
    """

    def __init__(self, model: Any = "smollm2", *, tokenizer: Any = None, method: str = "all", template: Any = None,
                 verbalizer: Any = None, n_templates: int = 3, budget_minutes: float = 10.0, seed: int = 0,
                 top_k_words: int = 10, label_sets: int = 3, words_per_class: int = 1, candidate_words: Any = None,
                 infill_beam: int = 3, infill_examples: int = 16, causal_infill_tokens: int = 4,
                 n_triggers: int = 3, autoprompt_iterations: int = 8, autoprompt_candidates: int = 8,
                 autoprompt_batch: int = 16,
                 autoprompt_objective: str = "likelihood", n_train: int | None = None, train_steps: int = 30,
                 learning_rate: float = 1e-4, train_batch_size: int = 8, keep_margin: float | str = "auto",
                 content_free: Sequence[str] = CONTENT_FREE,
                 multi_token: str = "parallel", after_mask: str = "drop", batch_size: int = 16,
                 max_length: int | None = None, device: str | None = None, dtype: str | None = None,
                 gguf_file: str | None = None, trust_remote_code: bool = False,
                 show_progress: bool | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.method = method
        self.template = template
        self.verbalizer = verbalizer
        self.n_templates = n_templates
        self.budget_minutes = budget_minutes
        self.seed = seed
        self.top_k_words = top_k_words
        self.label_sets = label_sets
        self.words_per_class = words_per_class
        self.candidate_words = candidate_words
        self.infill_beam = infill_beam
        self.infill_examples = infill_examples
        self.causal_infill_tokens = causal_infill_tokens
        self.n_triggers = n_triggers
        self.autoprompt_iterations = autoprompt_iterations
        self.autoprompt_candidates = autoprompt_candidates
        self.autoprompt_batch = autoprompt_batch
        self.autoprompt_objective = autoprompt_objective
        self.n_train = n_train
        self.train_steps = train_steps
        self.learning_rate = learning_rate
        self.train_batch_size = train_batch_size
        self.keep_margin = keep_margin
        self.content_free = content_free
        self.multi_token = multi_token
        self.after_mask = after_mask
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.dtype = dtype
        self.gguf_file = gguf_file
        self.trust_remote_code = trust_remote_code
        self.show_progress = show_progress

    # -- checks ------------------------------------------------------------------------------------
    def _check_settings(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.budget_minutes, (int, float)) or not self.budget_minutes >= 0:
            raise ConfigError(f"budget_minutes must be a number >= 0, got {self.budget_minutes!r}")
        if self.autoprompt_objective not in OBJECTIVES:
            raise ConfigError(f"autoprompt_objective must be one of {OBJECTIVES}, got {self.autoprompt_objective!r}")
        positive = {"n_templates": self.n_templates, "top_k_words": self.top_k_words, "label_sets": self.label_sets,
                    "words_per_class": self.words_per_class, "infill_beam": self.infill_beam,
                    "infill_examples": self.infill_examples, "causal_infill_tokens": self.causal_infill_tokens,
                    "n_triggers": self.n_triggers, "autoprompt_candidates": self.autoprompt_candidates,
                    "autoprompt_batch": self.autoprompt_batch,
                    "train_batch_size": self.train_batch_size}
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        margin = self.keep_margin
        number = isinstance(margin, (int, float)) and not isinstance(margin, bool)
        if margin != "auto" and not (number and 0 <= margin <= 1):
            raise ConfigError(f"keep_margin must be 'auto' or a dev accuracy difference from 0 to 1, got {margin!r}")
        for name in ("train_steps", "autoprompt_iterations"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")

    def _data(self, X: Any, y: Any, dev: Any) -> tuple[list[str], list[str], tuple, tuple]:
        template = Template.load(self.template) if self.template is not None else None
        fields = sorted(template.fields) if template is not None else ["text"]
        if dev is None or not isinstance(dev, (tuple, list)) or len(dev) != 2:
            raise DataError("the search scores candidates on dev examples: pass dev=(X_dev, y_dev)")
        train_x, dev_x = as_examples(X, fields), as_examples(dev[0], fields)
        train_y, dev_y = [str(v) for v in y], [str(v) for v in dev[1]]
        for name, xs, ys in (("training", train_x, train_y), ("dev", dev_x, dev_y)):
            if not xs:
                raise DataError(f"no {name} examples")
            if len(xs) != len(ys):
                raise DataError(f"{len(xs)} {name} examples but {len(ys)} labels")
        verbalizer = Verbalizer.load(self.verbalizer) if self.verbalizer is not None else None
        classes = verbalizer.classes if verbalizer is not None else _class_order(train_y + dev_y)
        if len(set(dev_y)) < 2:
            raise DataError(f"the dev set has a single class ({dev_y[0]!r}): accuracy on it cannot tell prompts "
                            "apart (any prompt that always answers that class is perfect); give dev examples of "
                            "at least two classes")
        for name, ys in (("training", train_y), ("dev", dev_y)):
            unknown = sorted(set(ys) - set(classes))
            if unknown and verbalizer is not None:  # labels may be class indices
                ys[:] = [verbalizer.classes[i] for i in verbalizer.label_indices(ys)]
            elif unknown:
                raise DataError(f"{name} label(s) {unknown} are not among the classes {classes}")
        missing = [c for c in classes if c not in set(train_y)]
        if missing:
            raise DataError(f"no training example for class(es) {missing}; label search and training need at "
                            "least one example of every class")
        if template is None:  # generated templates use every field the examples share, in their order
            fields = [f for f in train_x[0] if all(f in e for e in train_x + dev_x)]
            if not fields:
                raise DataError("the training and dev examples share no field to put into a template")
        else:  # the template's fields, in the order it uses them
            first = {f: re.search(rf"\b{re.escape(f)}\b", template.source) for f in template.fields}
            fields = sorted(template.fields, key=lambda f: (first[f].start() if first[f] else 0, f))
        for name, xs in (("training", train_x), ("dev", dev_x)):
            lacking = sorted({f for e in xs for f in fields if f not in e})
            if lacking:
                raise DataError(f"some {name} examples lack the field(s) {lacking}")
        index = {c: i for i, c in enumerate(classes)}
        train = (train_x, np.array([index[v] for v in train_y]), train_y)
        dev_ = (dev_x, np.array([index[v] for v in dev_y]), dev_y)
        return classes, fields, train, dev_

    # -- the search ----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Sequence[Any], *, dev: tuple[Any, Sequence[Any]]) -> PromptSearch:
        """Search with training examples ``X``/``y``, scoring on ``dev=(X_dev, y_dev)``; sets ``result_``."""
        self._check_settings()
        classes, fields, train, dev_ = self._data(X, y, dev)
        loaded = loaded_model(self.model, tokenizer=self.tokenizer, gguf_file=self.gguf_file, device=self.device,
                              dtype=self.dtype, trust_remote_code=self.trust_remote_code)
        scorer = make_scorer(loaded.kind, loaded.model, loaded.tokenizer, multi_token=self.multi_token,
                             after_mask=self.after_mask, batch_size=self.batch_size, max_length=self.max_length,
                             show_progress=False)
        run = _Run(self, loaded, scorer, classes, fields, train, dev_)
        self.result_ = run.execute()
        return self

    def write(self, out_dir: str | Path, *, task_name: str = "task", overwrite: bool = False) -> list[Path]:
        """Write the best ``n_templates`` prompts and the reports (see :func:`write_results`)."""
        result = getattr(self, "result_", None)
        if result is None:
            raise PromptlearnError("nothing to write yet: call fit() first")
        return write_results(out_dir, result, task_name=task_name, n_templates=self.n_templates, overwrite=overwrite)


class _Run:
    """The state of one :meth:`PromptSearch.fit` call."""

    def __init__(self, search: PromptSearch, loaded: Any, scorer: Any, classes: list[str], fields: list[str],
                 train: tuple, dev: tuple) -> None:
        self.s = search
        self.loaded, self.scorer = loaded, scorer
        self.kind = loaded.kind
        self.classes, self.fields = classes, fields
        self.train_x, self.train_gold, self.train_y = train
        self.dev_x, self.dev_gold, self.dev_y = dev
        self.budget = Budget(search.budget_minutes)
        training = search.train_steps > 0
        self.generation = self.budget.part(GENERATION_SHARE) if training else self.budget
        self.candidates: list[Candidate] = []
        self.seen: dict[tuple, Candidate] = {}
        self.pending: list[Candidate] = []
        self.stages: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.rankings: dict[str, Any] = {}
        self.given: Candidate | None = None  # the prompt the user gave (template + verbalizer), if any
        self.rng = np.random.default_rng(search.seed)
        self.show = progress_shown(search.show_progress)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _key(self, source: str, words: dict[str, list[str]]) -> tuple | None:
        try:
            text = Template(source).render(self.dev_x[0]).text
        except PromptlearnError as exc:
            logger.info("skipping candidate template %r: %s", source, exc)
            return None
        return (" ".join(text.split()), tuple(tuple(words[c]) for c in self.classes))

    def add(self, candidate: Candidate, scored: bool = False) -> bool:
        key = self._key(candidate.template, candidate.label_words)
        if key is None or key in self.seen:
            return False
        self.seen[key] = candidate
        (self.candidates if scored else self.pending).append(candidate)
        return True

    def stage(self, name: str, start: float, **info: Any) -> None:
        self.stages.append({"name": name, "seconds": time.perf_counter() - start, **info})

    def score_pending(self) -> int:
        scored = 0
        for candidate in tqdm(list(self.pending), desc="scoring candidates", disable=not self.show):
            if self.budget.expired():
                break
            start = time.perf_counter()
            try:
                acc, cal, ll = score_prompt(self.scorer, Template(candidate.template),
                                            Verbalizer(candidate.label_words), self.dev_x, self.dev_gold,
                                            self.s.content_free)
            except PromptlearnError as exc:  # e.g. too long for the window with these fields
                logger.info("candidate %r could not be scored: %s", candidate.template, exc)
                self.pending.remove(candidate)
                continue
            candidate.zero_shot, candidate.calibrated, candidate.log_likelihood = acc, cal, ll
            candidate.seconds = time.perf_counter() - start
            self.pending.remove(candidate)
            self.candidates.append(candidate)
            scored += 1
        skipped = len(self.pending)
        if skipped:
            self.notes.append(f"the time budget ran out with {skipped} candidate(s) unscored")
            self.pending.clear()
        return scored

    # -- stages --------------------------------------------------------------------------------------
    def labels(self, template: Template, *, budget: Budget) -> list[Candidate]:
        if budget.expired():
            return []
        start = time.perf_counter()
        s = self.s
        found = search_label_words(
            self.scorer, template, self.classes, (self.train_x, self.train_gold), (self.dev_x, self.dev_gold),
            top_k=s.top_k_words, n_sets=s.label_sets, words_per_class=s.words_per_class,
            candidate_words=s.candidate_words, content_free=s.content_free)
        self.rankings[template.source] = found.rankings
        added = [c for c in found.candidates if self.add(c, scored=True)]
        self.stage("labels", start, template=template.source, candidates=len(added))
        return found.candidates

    def infill(self, verbalizer: Verbalizer) -> None:
        start = time.perf_counter()
        s = self.s
        seeds = sum(self.add(Candidate(source, verbalizer.to_dict(), "seed"))
                    for source in seed_templates(self.fields, self.kind))
        subset = self._subset(s.infill_examples)
        examples = [self.train_x[i] for i in subset]
        gold = [int(self.train_gold[i]) for i in subset]
        words = [verbalizer.words[g][0] for g in gold]
        forbidden = [w for ws in verbalizer.words for w in ws]
        if self.kind == "masked":
            written = infill_masked(self.scorer, examples, words, self.fields, beam=s.infill_beam,
                                    budget=self.generation, forbidden=forbidden, show_progress=self.show)
            source = "infill"
        else:
            self.notes.append("infill with a causal LM: it cannot fill blanks, so it wrote the words between the "
                              "text and the label word (templates ending with [MASK])")
            written = infill_causal(self.scorer, examples, gold, [ws[0] for ws in verbalizer.words], self.fields,
                                    max_tokens=s.causal_infill_tokens, beam=s.infill_beam, budget=self.generation,
                                    forbidden=forbidden, show_progress=self.show)
            source = "infill:causal"
        self.stage("infill", start, candidates=seeds + sum(self.add(Candidate(t, verbalizer.to_dict(), source))
                                                           for t, _ in written))
        self.score_pending()

    def autoprompt(self, verbalizer: Verbalizer) -> None:
        if self.generation.expired():
            return
        start = time.perf_counter()
        s = self.s
        found = hotflip(self.scorer, self.train_x, [int(g) for g in self.train_gold], verbalizer, self.fields,
                        n_triggers=s.n_triggers, iterations=s.autoprompt_iterations,
                        n_candidates=s.autoprompt_candidates, batch_size=s.autoprompt_batch,
                        objective=s.autoprompt_objective, seed=s.seed, budget=self.generation,
                        show_progress=self.show)
        from .autoprompt import trigger_template

        sources = [trigger_template(self.fields, found.words, self.kind)] + [t for t, _ in reversed(found.templates)]
        added = sum(self.add(Candidate(t, verbalizer.to_dict(), "autoprompt")) for t in sources)
        self.stage("autoprompt", start, candidates=added, triggers=found.words,
                   initial_loss=round(found.initial_loss, 6), loss=round(found.loss, 6),
                   swaps=sum(h.get("swapped", False) for h in found.history))
        self.score_pending()

    def train(self) -> None:
        s = self.s
        n_train = s.n_train if s.n_train is not None else s.n_templates
        if s.train_steps == 0 or n_train == 0:
            return
        start = time.perf_counter()
        scoring = ScoringOptions(multi_token=s.multi_token, after_mask=s.after_mask, batch_size=s.batch_size,
                                 max_length=s.max_length, content_free=s.content_free)
        chosen = [c for c in rank(self.candidates) if c is not self.given][:n_train]
        if self.given in self.candidates:  # the baseline first: the others are measured against it
            chosen.insert(0, self.given)
        last = 0.0
        trained = 0
        for candidate in chosen:
            if self.budget.left() <= last:
                self.notes.append(f"the time budget ran out after training {trained} of {len(chosen)} candidate(s)")
                break
            began = time.perf_counter()
            candidate.trained = train_and_score(
                self.loaded, Template(candidate.template), Verbalizer(candidate.label_words),
                (self.train_x, self.train_y), (self.dev_x, self.dev_y), steps=s.train_steps,
                learning_rate=s.learning_rate, batch_size=s.train_batch_size, seed=s.seed, scoring=scoring,
                device=str(self.scorer.device), show_progress=self.show)
            last = time.perf_counter() - began
            candidate.seconds += last
            trained += 1
        self.stage("train", start, candidates=trained)

    def _subset(self, n: int) -> list[int]:
        if len(self.train_x) <= n:
            return list(range(len(self.train_x)))
        return sorted(self.rng.permutation(len(self.train_x))[:n].tolist())

    # -- the whole run -------------------------------------------------------------------------------
    def execute(self) -> SearchResult:
        s = self.s
        method = s.method
        base = (Template.load(s.template) if s.template is not None
                else Template(seed_templates(self.fields, self.kind)[0], name="seed"))
        given = Verbalizer.load(s.verbalizer) if s.verbalizer is not None else None
        if given is not None:  # the prompt as given (with the default template if none): the baseline
            self.given = Candidate(base.source, given.to_dict(), "given")
            self.add(self.given)
            self.score_pending()
        label_found: list[Candidate] = []
        if method in ("labels", "all") or given is None:
            label_found = self.labels(base, budget=self.generation if method != "labels" else self.budget)
            if given is None and not label_found:
                self._none_scored()
        verbalizer = given or Verbalizer(rank(label_found)[0].label_words)
        if method in ("infill", "all"):
            self.infill(verbalizer)
        if method in ("autoprompt", "all"):
            self.autoprompt(verbalizer)
        if method == "all":
            self.refine(base)
        if not self.candidates:
            self._none_scored()
        self.train()
        if self.budget.expired():  # a unit of work (one label search, one training run) is never interrupted
            slowest = max(self.stages, key=lambda st: st["seconds"], default=None)
            where = f" (the slowest stage: {slowest['name']}, {slowest['seconds']:.1f} s)" if slowest else ""
            self.notes.append(f"the search took {self.budget.elapsed():.1f} s, over its {60 * s.budget_minutes:g} s "
                              f"budget: the budget is checked between units of work{where}")
        return SearchResult(
            candidates=self.ranking(), classes=list(self.classes), model=self._model_name(), method=method,
            seed=s.seed, n_train=len(self.train_x), n_dev=len(self.dev_x), settings=self._settings(),
            stages=self.stages, notes=self.notes, seconds=self.budget.elapsed(), label_rankings=self.rankings)

    def ranking(self) -> list[Candidate]:
        """The final ranking: :func:`rank`, with the given prompt first unless a found one beats it on dev by
        more than ``keep_margin`` (trained accuracy when both were trained, else zero-shot)."""
        ranked = rank(self.candidates)
        given = self.given
        found = [c for c in ranked if c is not given]
        if given not in ranked or not found:
            return ranked
        rival = found[0]
        if given.trained is not None and rival.trained is not None:
            ours, theirs, what = given.trained, rival.trained, "trained"
        else:
            ours, theirs, what = given.zero_shot_score, rival.zero_shot_score, "zero-shot"
        margin = self.keep_margin()
        if theirs > ours + margin + 1e-9:
            self.notes.append(f"a found prompt replaced the given one: {what} dev accuracy {theirs:.3f} against "
                              f"{ours:.3f}, more than keep_margin {margin:.3f} better")
            return ranked
        self.notes.append(f"kept the given prompt first: the best found one scored {theirs:.3f} {what} dev accuracy "
                          f"against its {ours:.3f}, not more than keep_margin {margin:.3f} better")
        return [given] + found

    def keep_margin(self) -> float:
        """``keep_margin``, with ``"auto"`` resolved: 0.5 / sqrt(n_dev) * sqrt(2 ln N), N scored candidates."""
        if self.s.keep_margin != "auto":
            return float(self.s.keep_margin)
        n = max(len(self.candidates), 2)
        return min(1.0, 0.5 / math.sqrt(len(self.dev_x)) * math.sqrt(2 * math.log(n)))

    def refine(self, base: Template) -> None:
        templates = []
        for candidate in rank(self.candidates):
            if candidate.template != base.source and candidate.template not in templates:
                templates.append(candidate.template)
            if len(templates) == 2:
                break
        for source in templates:
            try:
                self.labels(Template(source), budget=self.generation)
            except PromptlearnError as exc:
                logger.info("label search on %r failed: %s", source, exc)

    def _none_scored(self) -> None:
        if not self.budget.expired():
            raise PromptlearnError("no candidate prompt could be scored (see the log with -v for why each was "
                                   "skipped); check that the examples fit the model's window")
        raise PromptlearnError(
            f"the time budget ({self.s.budget_minutes:g} min) ran out before a single candidate could be scored "
            f"({self.budget.elapsed():.1f} s spent); raise the budget (--budget-minutes): one label search on "
            f"{len(self.train_x)} training and {len(self.dev_x)} dev examples takes a few model passes over them")

    def _model_name(self) -> str:
        return str(self.s.model) if isinstance(self.s.model, (str, Path)) else str(self.loaded.name)

    def _settings(self) -> dict[str, Any]:
        skip = {"model", "tokenizer", "show_progress", "device"}
        out = {}
        for name, value in vars(self.s).items():
            if name in skip or name.endswith("_"):
                continue
            if name == "dtype":
                value = dtype_name(value)
            elif isinstance(value, (Template, Verbalizer)):
                value = value.source if isinstance(value, Template) else value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            elif not isinstance(value, (str, int, float, bool, list, dict, type(None))):
                value = str(value)
            out[name] = value
        out["model_kind"] = self.kind
        out["fields"] = list(self.fields)
        return out
