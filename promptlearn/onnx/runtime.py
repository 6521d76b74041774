"""The ONNX runtime of an exported classifier: :class:`OnnxClassifier` predicts with onnxruntime, tokenizers and
numpy, never torch.

A row is encoded exactly as the masked scorer encodes it (:mod:`promptlearn.core.encoding`: the same pieces,
special-token guard and mask-safe truncation; ``[MASK]`` becomes one mask token per label-word token), the graph
gives the label tokens' scores at the masks (see :mod:`promptlearn.onnx.export`), and the rest is numpy: tokens
summed into words, words aggregated into classes (:class:`~promptlearn.core.verbalizer.Verbalizer`'s
``aggregation``), the class softmax and contextual calibration (:mod:`promptlearn.core.calibration`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.calibration import content_free_examples, content_free_prior, contextual_calibration, log_normalize
from ..core.encoding import Piece, TextEncoding, mask_context, word_token_ids
from ..core.errors import ConfigError, PromptlearnError, SavedFolderError, TemplateError, VerbalizerError
from ..core.inputs import as_examples
from ..core.template import Prompt, Template
from ..core.verbalizer import Verbalizer

FORMAT = "promptlearn.OnnxClassifier"  # as promptlearn.onnx.export writes it
FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
CONFIG_FILE = "onnx_config.json"
_CONFIG_TYPES = {"template": dict, "verbalizer": dict, "aggregation": str, "calibrate": bool, "content_free": list,
                 "max_length": int, "batch_size": int, "label_token_ids": list, "normalized": bool, "tokenizer": dict}
_TOKENIZER_TYPES = {"mask_token": str, "mask_token_id": int, "pad_token_id": int, "special_tokens": list,
                    "special_ids": list}


def is_onnx_folder(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` is an exported ONNX classifier (it holds ``onnx_config.json``)."""
    return (Path(directory) / CONFIG_FILE).is_file()


class _Tokenizer:
    """A ``tokenizers.Tokenizer`` called the way :class:`~promptlearn.core.encoding.TextEncoding` calls a Hugging
    Face fast tokenizer (ids, character offsets, special-token mask), with the special tokens recorded at export."""

    is_fast = True

    def __init__(self, backend: Any, specials: dict[str, Any]) -> None:
        backend.no_truncation()
        backend.no_padding()
        self.backend = backend
        self.backend_tokenizer = backend
        self.mask_token: str = specials["mask_token"]
        self.mask_token_id: int = specials["mask_token_id"]
        self.pad_token_id: int = specials["pad_token_id"]
        self.all_special_tokens: list[str] = list(specials["special_tokens"])
        self.all_special_ids: list[int] = list(specials["special_ids"])

    def __call__(self, text: str | Sequence[str], add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False, return_special_tokens_mask: bool = False,
                 verbose: bool = False) -> dict[str, Any]:
        if not isinstance(text, str):
            encoded = self.backend.encode_batch(list(text), add_special_tokens=add_special_tokens)
            return {"input_ids": [e.ids for e in encoded]}
        encoding = self.backend.encode(text, add_special_tokens=add_special_tokens)
        out: dict[str, Any] = {"input_ids": encoding.ids}
        if return_offsets_mapping:
            out["offset_mapping"] = encoding.offsets
        if return_special_tokens_mask:
            out["special_tokens_mask"] = encoding.special_tokens_mask
        return out


def _fail(directory: Path, what: str) -> SavedFolderError:
    return SavedFolderError(f"{directory / CONFIG_FILE}: {what}; export the classifier again with "
                            f"'promptlearn export --format onnx'")


def _read_config(directory: Path) -> dict[str, Any]:
    """``onnx_config.json``, checked: its format, version and every key's JSON type (one line per problem)."""
    if not directory.is_dir():
        raise SavedFolderError(f"{directory} is not a folder; give the folder 'promptlearn export' wrote")
    if not is_onnx_folder(directory):
        raise SavedFolderError(f"{directory} has no {CONFIG_FILE}; it is not an exported ONNX classifier (export one "
                               f"with 'promptlearn export --model-dir SAVED --format onnx --output DIR')")
    if directory.resolve() not in (directory / CONFIG_FILE).resolve().parents:
        raise SavedFolderError(f"{directory / CONFIG_FILE} leads outside {directory}; an exported folder is read only "
                               f"from inside")
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _fail(directory, f"cannot be read ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _fail(directory, f"is not a {FORMAT} config")
    if not isinstance(config.get("version"), int) or config["version"] > FORMAT_VERSION:
        raise _fail(directory, f"has format version {config.get('version')!r}; this promptlearn reads up to "
                               f"{FORMAT_VERSION} (upgrade promptlearn)")
    for types, where in ((_CONFIG_TYPES, config), (_TOKENIZER_TYPES, config.get("tokenizer") or {})):
        for key, kind in types.items():
            if not isinstance(where.get(key), kind) or (kind is int and isinstance(where.get(key), bool)):
                raise _fail(directory, f"'{key}' is missing or not a {kind.__name__}")
    for name in (MODEL_FILE, "tokenizer.json"):
        if not (directory / name).is_file():
            raise SavedFolderError(f"{directory} lacks {name}; export the classifier again")
        if directory.resolve() not in (directory / name).resolve().parents:  # a link that leads out of the folder
            raise SavedFolderError(f"{directory / name} leads outside {directory}; an exported folder is read only "
                                   f"from inside (copy the file in instead of linking it)")
    return config


def _aggregate(word_scores: np.ndarray, verbalizer: Verbalizer) -> np.ndarray:
    """Per-word log-scores ``[N, W]`` -> per-class ``[N, C]``, as the scorers' ``aggregate_word_scores``."""
    columns, start = [], 0
    for words in verbalizer.words:
        block = word_scores[:, start:start + len(words)]
        start += len(words)
        if verbalizer.aggregation == "max":
            columns.append(block.max(axis=1))
            continue
        top = block.max(axis=1, keepdims=True)
        pooled = (top + np.log(np.exp(block - top).sum(axis=1, keepdims=True)))[:, 0]
        columns.append(pooled - math.log(len(words)) if verbalizer.aggregation == "mean" else pooled)
    return np.stack(columns, axis=1)


class OnnxClassifier(TextEncoding):
    """An exported prompt classifier: ``predict`` / ``predict_proba`` with onnxruntime, without torch.

    Made by :meth:`load` from a folder that ``promptlearn export --format onnx`` (:func:`~promptlearn.onnx.
    export_onnx`) wrote. ``batch_size``: rows per graph run; ``calibrate``: divide out the content-free prior
    (default: as the classifier was saved).
    """

    def __init__(self, session: Any, tokenizer: _Tokenizer, config: dict[str, Any], directory: Path, *,
                 batch_size: int, calibrate: bool) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.session = session
        self.tokenizer = tokenizer
        self.config = config
        self.directory = directory
        self.batch_size = batch_size
        self.calibrate = calibrate
        self.max_length: int = config["max_length"]
        self.prompt_source = None
        self._offsets = True
        self._backend = tokenizer.backend
        template = config["template"]
        self.template_ = Template(str(template.get("source", "")), name=template.get("name"),
                                  shortenable=template.get("shortenable"))
        self.verbalizer_ = Verbalizer.load(config["verbalizer"], aggregation=config["aggregation"])
        self.content_free = tuple(config["content_free"])
        self._columns = {int(token): column for column, token in enumerate(config["label_token_ids"])}
        self._words = [w for class_words in self.verbalizer_.words for w in class_words]
        self._word_ids: dict[tuple[str, str], tuple[tuple[int, ...], ...]] = {}
        self._prior: np.ndarray | None = None

    @classmethod
    def load(cls, directory: str | os.PathLike, *, batch_size: int | None = None, calibrate: bool | None = None,
             intra_op_num_threads: int | None = None, providers: Sequence[str] | None = None) -> OnnxClassifier:
        """The classifier exported to ``directory``. ``intra_op_num_threads``: onnxruntime's threads per run
        (default: its own choice); ``providers``: onnxruntime's execution providers (default: CUDA when
        onnxruntime has it, else the CPU)."""
        try:
            import onnxruntime
            import tokenizers
        except ImportError:
            raise PromptlearnError("the ONNX runtime needs onnxruntime and tokenizers; install them with: pip "
                                   "install 'promptlearn[onnx]'") from None
        directory = Path(directory)
        config = _read_config(directory)
        options = onnxruntime.SessionOptions()
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = int(intra_op_num_threads)
        if providers is None:
            available = onnxruntime.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            session = onnxruntime.InferenceSession(str(directory / MODEL_FILE), options, providers=list(providers))
            backend = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 -- onnxruntime and tokenizers raise their own types for a bad file
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SavedFolderError(f"{directory}: the exported model or tokenizer cannot be read ({first}); export "
                                   f"the classifier again") from None
        return cls(session, _Tokenizer(backend, config["tokenizer"]), config, directory,
                   batch_size=batch_size or config["batch_size"],
                   calibrate=config["calibrate"] if calibrate is None else bool(calibrate))

    # -- the estimator's surface ---------------------------------------------------------------------
    @property
    def classes_(self) -> np.ndarray:
        return np.array(self.verbalizer_.classes, dtype=object)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Class log-probabilities ``[n_examples, n_classes]``, classes in ``classes_`` order."""
        return self._log_probs(X, (self.calibrate,))[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[n_examples, n_classes]``, classes in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class name of each example."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def raw_and_calibrated_log_proba(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Raw and calibrated class log-probabilities from one scoring pass."""
        raw, calibrated = self._log_probs(X, (False, True))
        return raw, calibrated

    def content_free_prior(self) -> np.ndarray:
        """The prompt's class prior on the content-free inputs (what calibration divides out)."""
        if self._prior is None:
            inputs = content_free_examples(self.template_.fields, self.content_free)
            self._prior = content_free_prior(self._log_probs(inputs, (False,))[0])
        return self._prior

    def _log_probs(self, X: Any, calibrations: Sequence[bool]) -> list[np.ndarray]:
        examples = as_examples(X, self.template_.fields)
        prompts = [self.template_.render(example) for example in examples]
        scores = self.class_scores(prompts) if prompts else np.zeros((0, len(self.verbalizer_)))
        log_probs = log_normalize(scores)
        return [contextual_calibration(log_probs, self.content_free_prior()) if calibrate else log_probs
                for calibrate in calibrations]

    # -- scoring ------------------------------------------------------------------------------------
    def _word_token_ids(self, prompt: Prompt) -> tuple[tuple[int, ...], ...]:
        """The label words' token ids in ``prompt``'s mask context (checked against the graph's label tokens)."""
        context = mask_context(prompt)
        ids = self._word_ids.get(context)
        if ids is None:
            ids = tuple(word_token_ids(self.tokenizer, word, *context) for word in self._words)
            missing = [w for w, t in zip(self._words, ids) if not t or any(i not in self._columns for i in t)]
            if missing:
                raise VerbalizerError(f"{self.directory}: label word(s) {missing} tokenize differently after "
                                      f"{context[0]!r} than when the classifier was exported; export it again")
            if not self.config["normalized"] and len({len(t) for t in ids}) > 1:
                raise VerbalizerError(f"{self.directory}: after {context[0]!r} the label words take different "
                                      f"numbers of tokens, which the exported graph does not normalise; export again")
            self._word_ids[context] = ids
        return ids

    def _rows(self, prompts: Sequence[Prompt], jobs: Sequence[tuple[int, int]]) -> list[list[int]]:
        """Token ids of each (prompt, number of masks), as :class:`~promptlearn.scorer.MaskedLMScorer` makes them."""
        mask, mask_id = self.tokenizer.mask_token, self.tokenizer.mask_token_id
        clean = self._clean_field

        def text(prompt: Prompt, m: int) -> str:
            parts = []
            for segment in prompt.segments:
                if segment.kind == "soft":
                    raise TemplateError("the template has [SOFT] slots; an exported classifier has no soft prompt")
                parts.append(mask * m if segment.kind == "mask" else
                             clean(segment.text) if segment.kind == "field" else segment.text)
            return "".join(parts)

        def pieces(j: int) -> list[Piece]:
            p, m = jobs[j]
            prompt = prompts[p]
            index = prompt.mask_index()
            return (self._pieces(prompt.segments[:index], prompt) + [Piece(mask * m)]
                    + self._pieces(prompt.segments[index + 1:], prompt))

        describe = [f"example {p}" for p, _ in jobs]
        encoded = self._encode_texts([text(prompts[p], m) for p, m in jobs], pieces, [self.max_length] * len(jobs),
                                     True, describe)
        for (p, m), ids in zip(jobs, encoded):
            if ids.count(mask_id) != m:
                raise TemplateError(f"example {p}: expected {m} mask token(s) after tokenisation, found "
                                    f"{ids.count(mask_id)}")
        return encoded

    def _clean_field(self, text: str) -> str:
        return super()._clean_field(text.replace(self.tokenizer.mask_token, " "))

    def class_scores(self, prompts: Sequence[Prompt]) -> np.ndarray:
        """Class log-scores ``[N, C]`` of rendered prompts (not normalised across classes)."""
        word_ids = [self._word_token_ids(prompt) for prompt in prompts]
        jobs = [(p, m) for p, ids in enumerate(word_ids) for m in sorted({len(t) for t in ids})]
        rows = self._rows(prompts, jobs)
        scores = np.zeros((len(prompts), len(self._words)), dtype=np.float64)
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            token_scores, first_mask = self._run([rows[r] for r in batch])
            position = {r: k for k, r in enumerate(batch)}
            if all(len(t) == 1 for r in batch for t in word_ids[jobs[r][0]]):
                # one mask a row, one token a word: a gather
                examples = np.array([jobs[r][0] for r in batch])
                columns = np.array([[self._columns[t[0]] for t in word_ids[p]] for p in examples])
                scores[examples] = np.take_along_axis(token_scores[first_mask], columns, axis=1)
                continue
            flat_mask, flat_column, flat_pair = [], [], []
            for r in batch:
                p, m = jobs[r]
                for w, tokens in enumerate(word_ids[p]):
                    if len(tokens) != m:
                        continue
                    base = first_mask[position[r]]
                    flat_mask.extend(range(base, base + m))
                    flat_column.extend(self._columns[t] for t in tokens)
                    flat_pair.extend([p * len(self._words) + w] * m)
            values = token_scores[np.array(flat_mask, dtype=np.int64), np.array(flat_column, dtype=np.int64)]
            np.add.at(scores.reshape(-1), np.array(flat_pair, dtype=np.int64), values)
        return _aggregate(scores, self.verbalizer_)

    def _run(self, rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The graph on padded ``rows``: label-token scores at every mask ``[M, L]`` (row-major, each row's masks
        left to right) and the index of each row's first mask in them."""
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        keep = np.arange(int(lengths.max())) < lengths[:, None]
        ids = np.full(keep.shape, self.tokenizer.pad_token_id, dtype=np.int64)
        ids[keep] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        at_mask = (ids == self.tokenizer.mask_token_id) & keep
        mask_rows, mask_cols = np.nonzero(at_mask)
        feed = {"input_ids": ids, "attention_mask": keep.astype(np.int64), "mask_rows": mask_rows.astype(np.int64),
                "mask_cols": mask_cols.astype(np.int64)}
        (token_scores,) = self.session.run(None, feed)
        first = np.concatenate([[0], np.cumsum(at_mask.sum(axis=1))[:-1]]).astype(np.int64)
        return token_scores.astype(np.float64), first
