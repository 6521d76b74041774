"""Scoring search candidates on the dev examples: zero-shot and calibrated accuracy (cheap, for every
candidate), and accuracy after short prompt-based fine-tuning (for the top few); the time budget."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...core.calibration import content_free_examples, log_normalize
from ...core.template import Template
from ...core.verbalizer import Verbalizer


class Budget:
    """A wall-clock budget, checked between units of work (never in the middle of one)."""

    def __init__(self, minutes: float, start: float | None = None) -> None:
        self.minutes = float(minutes)
        self.start = time.perf_counter() if start is None else start

    def part(self, fraction: float) -> Budget:
        """The same clock with a deadline at ``fraction`` of this budget."""
        return Budget(self.minutes * fraction, self.start)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.minutes * 60.0 - self.elapsed()

    def expired(self) -> bool:
        return self.left() <= 0


def accuracies(dev_scores: np.ndarray, cf_scores: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, ...]:
    """Zero-shot accuracy, calibrated accuracy and mean log p(right class), for a batch of prompts.

    ``dev_scores`` ``[A, N, C]`` and ``cf_scores`` ``[A, M, C]`` are class log-scores of A prompts on N dev
    and M content-free inputs; calibration is :func:`promptlearn.core.calibration.contextual_calibration`.
    """
    log_probs = log_normalize(dev_scores)
    prior = np.exp(log_normalize(cf_scores)).mean(axis=1)
    prior = prior / prior.sum(axis=-1, keepdims=True)
    calibrated = log_normalize(log_probs - np.log(prior)[:, None, :])
    rows = np.arange(len(gold))
    accuracy = (log_probs.argmax(axis=-1) == gold).mean(axis=-1)
    calibrated_accuracy = (calibrated.argmax(axis=-1) == gold).mean(axis=-1)
    log_likelihood = log_probs[:, rows, gold].mean(axis=-1)
    return accuracy, calibrated_accuracy, log_likelihood


def evaluate_assignments(dev_words: np.ndarray, cf_words: np.ndarray, gold: np.ndarray,
                         assignments: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, ...]:
    """:func:`accuracies` of one-word-per-class verbalizers: ``assignments[a, c]`` is the column of class c's
    word in the word log-probabilities ``dev_words`` ``[N, W]`` / ``cf_words`` ``[M, W]``."""
    parts = []
    for start in range(0, len(assignments), chunk):
        block = assignments[start:start + chunk]
        parts.append(accuracies(dev_words[:, block].transpose(1, 0, 2), cf_words[:, block].transpose(1, 0, 2), gold))
    if not parts:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def score_prompt(scorer: Any, template: Template, verbalizer: Verbalizer, dev_examples: Sequence[dict],
                 gold: np.ndarray, content_free: Sequence[str]) -> tuple[float, float, float]:
    """(zero-shot accuracy, calibrated accuracy, mean log p(right class)) of one prompt on the dev examples."""
    prompts = [template.render(example) for example in dev_examples]
    cf_prompts = [template.render(example) for example in content_free_examples(template.fields, content_free)]
    scores = scorer.score(prompts + cf_prompts, verbalizer)
    acc, cal, ll = accuracies(scores[None, :len(prompts)], scores[None, len(prompts):], gold)
    return float(acc[0]), float(cal[0]), float(ll[0])


def train_and_score(loaded: Any, template: Template, verbalizer: Verbalizer, train: tuple[list, list],
                    dev: tuple[list, list], *, steps: int, learning_rate: float, batch_size: int, seed: int,
                    scoring: Any, device: str | None = None, show_progress: bool | None = None) -> float:
    """Dev accuracy after ``steps`` of prompt-based fine-tuning (PET loss) from the current weights; the
    model's weights (and which of them train) are restored afterwards, whatever happens."""
    from ...estimators.classifier import PromptClassifier
    from ...estimators.options import TrainingOptions
    from ...tuning import ManualConfig

    model = loaded.model
    snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        classifier = PromptClassifier(model=model, tokenizer=loaded.tokenizer, template=template,
                                      verbalizer=verbalizer, tuning=ManualConfig(learning_rate=learning_rate),
                                      training=TrainingOptions(max_steps=steps, batch_size=batch_size),
                                      scoring=scoring, device=device, show_progress=show_progress, seed=seed)
        classifier.fit(*train)
        return float(classifier.score(*dev))
    finally:
        model.load_state_dict(snapshot)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(flags[name])
        model.eval()
