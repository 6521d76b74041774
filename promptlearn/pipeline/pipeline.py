"""PromptPipeline: one prediction's flow, render -> demonstrations -> score -> calibrate.

A plain object (not an estimator) over parts that are already built: the loaded model, the template, the
verbalizer, the scorer (with its continuous prompt, if any, attached) and the optional demonstration selector.
It holds the caches that belong to those parts (the demonstrations rendered once, the calibration priors) and
nothing else; an estimator builds a new pipeline when its configuration or its model's weights change.

``log_probs(examples, calibrations)`` is the whole flow: every example is rendered with the template; with
demonstrations each of ``n_sets`` seeded sets is assembled around it (after it for a masked LM, before it for a
causal LM, inside the chat template where asked); the scorer scores every prompt in one pass (calibration's
content-free prompts in the same call); contextual calibration divides out the prior of each prompt's own
demonstrations; the sets' log-probabilities are averaged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core.calibration import (content_free_examples, content_free_inputs, content_free_prior, contextual_calibration,
                                log_normalize)
from ..core.errors import DemonstrationTooLongError
from ..core.template import Prompt, Template
from ..core.verbalizer import Verbalizer
from ..models.loader import LoadedModel
from ..scorer import Scorer
from .demonstrations import DemonstrationSelector, assemble, render_demonstration


class PromptPipeline:
    """Render, add demonstrations, score and calibrate for one model, template and verbalizer.

    ``content_free``: the content-free inputs whose class prior calibration divides out. ``selector``: the
    demonstrations (None: none); ``n_sets`` demonstration sets are ensembled. ``context``: whether prompts are
    assembled at all (demonstrations or a chat template); ``separator`` joins demonstrations and the example,
    ``chat`` is the chat template's (prefix, suffix) or None.
    """

    def __init__(self, loaded: LoadedModel, template: Template, verbalizer: Verbalizer, scorer: Scorer, *,
                 content_free: str | Sequence[str], selector: DemonstrationSelector | None = None, n_sets: int = 1,
                 context: bool = False, separator: str = " ", chat: tuple[str, str] | None = None) -> None:
        self.loaded = loaded
        self.template = template
        self.verbalizer = verbalizer
        self.scorer = scorer
        self.content_free = content_free_inputs(content_free)
        self.selector = selector
        self.n_sets = n_sets if selector is not None else 1
        self.context = context
        self.separator = separator
        self.chat = chat
        self._rendered_demos: dict[int, list[Any]] = {}
        self._demo_priors: dict[tuple[int, ...], np.ndarray] = {}
        self._prior: np.ndarray | None = None
        if selector is not None:
            self.check_demonstration_lengths()

    # -- rendering ---------------------------------------------------------------------------------
    def prompts(self, examples: Sequence[Mapping[str, Any]], set_index: int = 0) -> list[Prompt]:
        """The examples' prompts, with demonstration set ``set_index`` and the chat template where configured."""
        queries = [self.template.render(example) for example in examples]
        if not self.context:
            return queries
        picks = self.selector.select(examples, set_index) if self.selector is not None else [()] * len(examples)
        return [self._assemble(query, pick) for query, pick in zip(queries, picks)]

    def render(self, examples: Sequence[Mapping[str, Any]]) -> list[list[Prompt]]:
        """The prompts scored for ``examples``: ``[demonstration set][example]``."""
        return [self.prompts(examples, s) for s in range(self.n_sets)]

    def _assemble(self, query: Prompt, demos: Sequence[int]) -> Prompt:
        """The example's prompt with the demonstrations ``demos`` (pool indices) and the chat template."""
        rendered = []
        for index in demos:
            if index not in self._rendered_demos:
                word = self.verbalizer.words[self.selector.labels[index]][0]
                self._rendered_demos[index] = render_demonstration(self.template, self.selector.examples[index],
                                                                   word, index)
            rendered.append(self._rendered_demos[index])
        return assemble(query, rendered, demos_first=self.loaded.kind == "causal", separator=self.separator,
                        chat=self.chat)

    def check_demonstration_lengths(self) -> None:
        """Every pool example must fit the model's window as a demonstration on its own (else: which, how long)."""
        selector, verbalizer = self.selector, self.verbalizer
        texts = [render_demonstration(self.template, example, verbalizer.words[label][0], index)
                 for index, (example, label) in enumerate(zip(selector.examples, selector.labels))]
        texts = ["".join(s.text for s in segments) for segments in texts]
        tokenizer, window = self.scorer.tokenizer, self.scorer.max_length
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]] if texts else []
        too_long = [i for i, length in enumerate(lengths) if length > window]
        if too_long:
            i = too_long[0]
            preview = texts[i] if len(texts[i]) <= 60 else texts[i][:60] + "..."
            raise DemonstrationTooLongError(
                f"demonstration pool example {i} (class {verbalizer.classes[selector.labels[i]]!r}, {preview!r}) is "
                f"{lengths[i]} tokens long as a demonstration, more than the model's window of {window} "
                f"tokens even on its own ({len(too_long)} pool example(s) are); shorten or remove it from the pool")

    # -- scoring and calibration -------------------------------------------------------------------
    def log_probs(self, examples: Sequence[Mapping[str, Any]], calibrations: Sequence[bool]) -> list[np.ndarray]:
        """Class log-probabilities ``[n_examples, n_classes]`` of ``examples``, raw or calibrated per entry of
        ``calibrations``, from one scoring pass."""
        if self.context and len(examples):
            return self._context_log_probs(examples, calibrations)
        scores = self.scorer.score([self.template.render(example) for example in examples], self.verbalizer)
        log_probs = log_normalize(scores) if len(examples) else np.zeros((0, len(self.verbalizer)))
        return [contextual_calibration(log_probs, self.content_free_prior()) if calibrate else log_probs
                for calibrate in calibrations]

    def content_free_prior(self) -> np.ndarray:
        """The prompt's class prior on the content-free inputs (what calibration divides out); with
        demonstrations, the content-free inputs draw theirs like any example (averaged over the sets)."""
        if self._prior is None:
            inputs = content_free_examples(self.template.fields, self.content_free)
            self._prior = content_free_prior(self.log_probs(inputs, (False,))[0])
        return self._prior

    def _context_log_probs(self, examples: Sequence[Mapping[str, Any]],
                           calibrations: Sequence[bool]) -> list[np.ndarray]:
        """With demonstrations / a chat template: every demonstration set is scored (and, where calibrated,
        divided by its own prior), then the sets' log-probabilities are averaged and renormalised. The
        content-free prompts of a calibration are scored in the same call, so a causal LM computes the
        demonstrations they share with the example once."""
        prompts = [p for s in range(self.n_sets) for p in self.prompts(examples, s)]
        demo_sets = [p.demonstrations for p in prompts]
        calibrating = any(calibrations)
        missing = list(dict.fromkeys(d for d in demo_sets if d not in self._demo_priors)) if calibrating else []
        prior_prompts = []
        if missing:  # the content-free inputs with each demonstration set whose prior is not cached yet
            inputs = [self.template.render(e) for e in content_free_examples(self.template.fields, self.content_free)]
            prior_prompts = [self._assemble(query, demos) for demos in missing for query in inputs]
        scores = self.scorer.score(prompts + prior_prompts, self.verbalizer)
        log_probs = log_normalize(scores[:len(prompts)])
        priors = None
        if calibrating:
            if missing:
                block = scores[len(prompts):]
                for demos, part in zip(missing, block.reshape(len(missing), -1, block.shape[-1])):
                    self._demo_priors[demos] = content_free_prior(part)
            priors = np.stack([self._demo_priors[d] for d in demo_sets])
        n_classes = len(self.verbalizer)
        out = []
        for calibrate in calibrations:
            variant = contextual_calibration(log_probs, priors) if calibrate else log_probs
            out.append(log_normalize(variant.reshape(self.n_sets, len(examples), n_classes).mean(axis=0)))
        return out
