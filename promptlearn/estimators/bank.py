"""PromptBank: one loaded base model serving many saved prompts, each example of a batch with its own.

Per-user or per-task prompts: every member is a classifier saved by
:meth:`PromptClassifier.save <promptlearn.PromptClassifier.save>` with a continuous prompt (``soft``,
``ptuning``, ``deep``; ``lora``, ``adapter``, ``bitfit``) or a zero-shot manual prompt, or a
:class:`~promptlearn.PromptClassifier` itself. Their parameters are attached to the bank's one copy of
the base model, and :meth:`PromptBank.predict_proba` scores a list of examples where each names the
prompt it uses.

* Soft, P-tuning, deep and manual prompts share forward passes: the rows of one batch may all use
  different prompts (each row's soft vectors and per-layer prefixes are its own prompt's; prefixes of
  different lengths are padded and masked), with the same results as scoring each prompt on its own
  (within float rounding, about 1e-6).
* LoRA, adapters and BitFit change the model's weights, so their rows are scored in passes of their own,
  one prompt at a time (adapters are switched, never merged).
* Members may have different templates, verbalizers, class sets and calibration; the scorer's options
  (``multi_token``, ``after_mask``, ``max_length``) are the bank's. Demonstrations and chat templates are
  not supported in a bank.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.calibration import content_free_examples, content_free_prior, contextual_calibration, log_normalize
from ..core.inputs import as_examples
from .classifier import PromptClassifier
from ..core.errors import ConfigError, DataError
from ..core.template import Prompt


@dataclass(frozen=True)
class RoutedPrompt(Prompt):
    """A rendered prompt that names the prompt module (its index in the bank) it is scored with."""

    source: int = 0


class PromptBank:
    """Several prompts on one base model; each example is scored with the prompt it names.

    ``model``: a hub id, local folder or short name, or a loaded model (then ``tokenizer`` too); the
    members' parameters are attached to it. ``batch_size``, ``max_length``, ``multi_token``,
    ``after_mask``, ``device``, ``show_progress`` as for :class:`~promptlearn.PromptClassifier`.
    ``check_base``: refuse a saved prompt whose base model name differs from the bank's.
    """

    def __init__(self, model: Any = "smollm2", *, tokenizer: Any = None, batch_size: int = 16,
                 max_length: int | None = None, multi_token: str = "parallel", after_mask: str = "drop",
                 device: str | None = None, show_progress: bool | None = None, gguf_file: str | None = None,
                 trust_remote_code: bool = False, check_base: bool = True) -> None:
        from ..models.loader import loaded_model
        from ..scorer import make_scorer

        self.loaded = loaded_model(model, tokenizer=tokenizer, gguf_file=gguf_file, device=device,
                                   trust_remote_code=trust_remote_code)
        self.model_name: str | None = str(model) if isinstance(model, (str, os.PathLike)) else None
        self.multi_token, self.after_mask = multi_token, after_mask
        self.check_base = check_base
        self.scorer = make_scorer(self.loaded.kind, self.loaded.model, self.loaded.tokenizer,
                                  multi_token=multi_token, after_mask=after_mask, batch_size=batch_size,
                                  max_length=max_length, show_progress=show_progress)
        self.members: dict[str, PromptClassifier] = {}
        self._index: dict[str, int] = {}
        self._priors: dict[str, np.ndarray] = {}
        self._set: Any = None

    # -- members --------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.members)

    def add(self, name: str, prompt: str | os.PathLike | PromptClassifier) -> PromptBank:
        """Attach a prompt under ``name``: a folder saved by ``PromptClassifier.save`` or a classifier."""
        if name in self.members:
            raise ConfigError(f"the bank already has a prompt named {name!r}")
        loaded = self.loaded
        if isinstance(prompt, PromptClassifier):
            member = self._from_classifier(name, prompt)
        else:
            member = self._from_folder(name, Path(prompt))
        if member.demonstrations.k or member.scoring.chat_template:
            raise ConfigError(f"prompt {name!r} uses demonstrations or a chat template, which a bank does not support")
        causal = loaded.kind == "causal"
        option, value = ("after_mask", self.after_mask) if causal else ("multi_token", self.multi_token)
        if getattr(member.scoring, option) != value:
            raise ConfigError(f"prompt {name!r} scores with {option}={getattr(member.scoring, option)!r}, the bank with "
                              f"{value!r}; make them agree")
        from ..tuning import ManualPrompt

        module = member.prompt_
        if module is None:
            from ..tuning import BuildContext, ManualConfig

            module = ManualPrompt(ManualConfig(), BuildContext(loaded.model, loaded.tokenizer, loaded.kind))
        module.eval()
        self.members[name] = member
        self._index[name] = len(self._index)
        self._modules().append(module)
        return self

    def _modules(self) -> list[Any]:
        if self._set is None:
            from ..tuning import PromptSet

            self._set = PromptSet([])
        return self._set.modules

    def _from_folder(self, name: str, folder: Path) -> PromptClassifier:
        from .saved_classifier import FORMAT, FORMAT_VERSION, SAVED_SCHEMA
        from .saved_folders import open_saved, recorded_model_name

        config = open_saved(folder, fmt=FORMAT, version=FORMAT_VERSION, what="PromptClassifier", schema=SAVED_SCHEMA,
                            required=("model", "template", "verbalizer", "params")).config
        source = config["params"].get("source", "manual")
        if source == "manual" and config["model"] is None:
            raise ConfigError(f"prompt {name!r} ({folder}) is a fine-tuned model, not a prompt; load it as a "
                              "PromptClassifier")
        base = config.get("base_model") or config["model"]
        if (self.check_base and self.model_name is not None and isinstance(base, str)
                and base != self.model_name and base != recorded_model_name(self.model_name)):
            raise ConfigError(f"prompt {name!r} ({folder}) was trained on {base!r}, the bank's model is "
                              f"{self.model_name!r} (check_base=False to attach it anyway)")
        return PromptClassifier.load(folder, model=self.loaded.model, tokenizer=self.loaded.tokenizer, device=None,
                                     show_progress=self.scorer.show_progress)  # the shared model stays where it is

    def _from_classifier(self, name: str, classifier: PromptClassifier) -> PromptClassifier:
        from sklearn.base import clone

        module = classifier.prompt_
        if module is None and classifier._is_fitted():
            raise ConfigError(f"prompt {name!r} is a fine-tuned model, not a prompt")
        member = clone(classifier).set_params(model=self.loaded.model, tokenizer=self.loaded.tokenizer,
                                              device=None)
        if module is not None:
            member._pending_prompt_state = module.prompt_state()
        return member

    # -- scoring --------------------------------------------------------------------------------
    def _route(self, names: Sequence[str], examples: Sequence[Mapping[str, Any]]) -> list[RoutedPrompt]:
        routed = []
        for name, example in zip(names, examples):
            prompt = self.members[name].template_.render(example)
            routed.append(RoutedPrompt(prompt.segments, prompt.shortenable, prompt.context, self._index[name]))
        return routed

    def _names(self, prompts: str | Sequence[str], n: int) -> list[str]:
        names = [prompts] * n if isinstance(prompts, str) else list(prompts)
        if len(names) != n:
            raise DataError(f"{n} examples but {len(names)} prompt names")
        unknown = sorted(set(names) - set(self.members))
        if unknown:
            raise ConfigError(f"unknown prompt(s) {unknown}; the bank has {self.names}")
        return names

    def _scores(self, names: Sequence[str], prompts: Sequence[RoutedPrompt]) -> list[np.ndarray]:
        """Each row's class log-probabilities (uncalibrated), in its prompt's class order."""
        self.scorer.prompt_source = self._set
        modules = self._set.modules
        out: list[np.ndarray | None] = [None] * len(prompts)
        groups: dict[Any, list[int]] = {}
        for i, name in enumerate(names):
            module = modules[self._index[name]]
            if module.changes_model:
                key: Any = ("model", name)
            else:
                key = ("linear", module.readout.out_features) if module.readout is not None else ("words",)
            groups.setdefault(key, []).append(i)
        for key, rows in groups.items():
            batch = [prompts[i] for i in rows]
            members = [self.members[names[i]] for i in rows]
            if key[0] == "linear" or (key[0] == "model" and modules[self._index[key[1]]].readout is not None):
                scores = self.scorer.readout_log_probs(batch)
                for row, values in zip(rows, scores):
                    out[row] = log_normalize(values)
                continue
            words = list(dict.fromkeys(w for m in members for class_words in m.verbalizer_.words for w in class_words))
            column = {w: k for k, w in enumerate(words)}
            word_scores = self.scorer.word_log_probs(batch, words)
            from ..scorer import aggregate_words

            for row, member, values in zip(rows, members, word_scores):
                verbalizer = member.verbalizer_
                own = [column[w] for class_words in verbalizer.words for w in class_words]
                out[row] = log_normalize(aggregate_words(values[own][None, :], verbalizer)[0])
        return out  # type: ignore[return-value]

    def _prior(self, name: str) -> np.ndarray:
        if name not in self._priors:
            member = self.members[name]
            examples = content_free_examples(member.template_.fields, member.scoring.content_free)
            scores = self._scores([name] * len(examples), self._route([name] * len(examples), examples))
            self._priors[name] = content_free_prior(np.stack(scores))
        return self._priors[name]

    def predict_log_proba_rows(self, X: Any, prompts: str | Sequence[str]) -> list[np.ndarray]:
        """Each example's class log-probabilities under the prompt it names (``prompts``: one name per example,
        or one name for all), in that prompt's class order; calibrated where the prompt says so."""
        if not self.members:
            raise ConfigError("the bank has no prompts; add some with add(name, folder)")
        if isinstance(X, (str, Mapping)):
            X = [X]
        names = self._names(prompts, len(X))
        if hasattr(X, "columns") or hasattr(X, "column_names"):  # a DataFrame or a datasets.Dataset
            examples = as_examples(X, ())
        else:  # a plain string fills its own prompt's single field
            examples = [as_examples([item], self.members[name].template_.fields)[0] for item, name in zip(X, names)]
        rows = self._scores(names, self._route(names, examples))
        for i, name in enumerate(names):
            if self.members[name].calibrate:
                rows[i] = contextual_calibration(rows[i][None, :], self._prior(name))[0]
        return rows

    def predict_log_proba(self, X: Any, prompts: str | Sequence[str]) -> np.ndarray:
        """Class log-probabilities ``[n_examples, n_classes]``; every named prompt must have the same classes
        (else use :meth:`predict` or :meth:`predict_log_proba_rows`)."""
        names = self._names(prompts, len(X) if not isinstance(X, (str, Mapping)) else 1)
        classes = {tuple(self.members[name].verbalizer_.classes) for name in set(names)}
        if len(classes) > 1:
            raise ConfigError("the named prompts have different classes; use predict() or predict_log_proba_rows()")
        rows = self.predict_log_proba_rows(X, names)
        width = len(next(iter(classes))) if classes else 0
        return np.stack(rows) if rows else np.zeros((0, width))

    def predict_proba(self, X: Any, prompts: str | Sequence[str]) -> np.ndarray:
        """Class probabilities ``[n_examples, n_classes]`` (the named prompts must share their classes)."""
        return np.exp(self.predict_log_proba(X, prompts))

    def predict(self, X: Any, prompts: str | Sequence[str]) -> np.ndarray:
        """Each example's most probable class under the prompt it names."""
        names = self._names(prompts, len(X) if not isinstance(X, (str, Mapping)) else 1)
        rows = self.predict_log_proba_rows(X, names)
        return np.array([self.members[name].verbalizer_.classes[int(np.argmax(r))] for name, r in zip(names, rows)],
                        dtype=object)
