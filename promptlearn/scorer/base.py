"""What both scorers share: tokenisation with mask-safe truncation (:mod:`.encoding`), label-word ids, batching
ordered by length, and the class-score readouts (see the package docstring)."""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.encoding import mask_context, word_token_ids
from ..core.errors import ConfigError, VerbalizerError
from ..core.template import Prompt
from ..core.verbalizer import Verbalizer
from .encoding import RowEncoding, _checked_backend, _source_of
from .guards import check_distinct_label_words
from .position_head import _PositionHead

MULTI_TOKEN_MODES = ("parallel", "left_to_right")
AFTER_MASK_MODES = ("drop", "score")
# Models whose position ids start after the padding index, so two positions are unusable.
_POSITION_OFFSET_MODELS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer"}


def default_max_length(model: Any, tokenizer: Any) -> int:
    """The longest input the model accepts: the tokenizer's limit and the position embeddings'."""
    limits = []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    config = model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions:
        limits.append(positions - (2 if config.model_type in _POSITION_OFFSET_MODELS else 0))
    return min(limits) if limits else 512


def aggregate_word_scores(word_scores: torch.Tensor, verbalizer: Verbalizer) -> torch.Tensor:
    """Combine per-word log-probabilities ``[N, W]`` into per-class log-scores ``[N, C]`` (differentiable).

    ``mean``: log of the mean word probability; ``sum``: log of their sum; ``max``: the best word.
    """
    columns, start = [], 0
    for words in verbalizer.words:
        block = word_scores[:, start:start + len(words)]
        start += len(words)
        if verbalizer.aggregation == "max":
            columns.append(block.max(dim=1).values)
        else:
            pooled = torch.logsumexp(block, dim=1)
            columns.append(pooled - math.log(len(words)) if verbalizer.aggregation == "mean" else pooled)
    return torch.stack(columns, dim=1)


def aggregate_words(word_scores: np.ndarray, verbalizer: Verbalizer) -> np.ndarray:
    """:func:`aggregate_word_scores` on numpy arrays."""
    return aggregate_word_scores(torch.as_tensor(word_scores, dtype=torch.float64), verbalizer).numpy()


def _flat_words(verbalizer: Verbalizer) -> list[str]:
    return [word for class_words in verbalizer.words for word in class_words]


class Scorer(RowEncoding):
    """Common machinery of the masked- and causal-LM scorers.

    ``prompt_source``: a :class:`~promptlearn.tuning.PromptSet` of continuous prompts (soft slots, deep
    prefixes, adapters) injected into every forward pass; None (the default) runs the model as it is.
    """

    kind = "base"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 16, max_length: int | None = None,
                 show_progress: bool | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or default_max_length(model, tokenizer)
        self.show_progress = show_progress
        self.prompt_source: Any = None
        self._head = _PositionHead(model, self._forward)
        self._word_ids_cache: dict[tuple[str, str, str], tuple[int, ...]] = {}
        self._offsets = bool(getattr(tokenizer, "is_fast", False))
        self._backend = _checked_backend(tokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- public -------------------------------------------------------------------------------
    def score(self, prompts: Sequence[Prompt], verbalizer: Verbalizer) -> np.ndarray:
        """Class log-scores ``[N, C]`` (not normalised across classes), batched, without gradients.

        With several processes (``accelerate launch``, ``torchrun``) each scores a contiguous slice and every
        process gets all the rows back in input order: call it on every process with the same prompts."""
        from ..models.distributed import gather_rows

        prompts = list(prompts)
        return gather_rows(len(prompts), lambda part: self._score(prompts[part], verbalizer))

    def _score(self, prompts: Sequence[Prompt], verbalizer: Verbalizer) -> np.ndarray:
        if self._linear_readout(prompts):
            return self.readout_log_probs(prompts)
        check_distinct_label_words(self, prompts, verbalizer)  # once per verbalizer and mask context
        return aggregate_words(self.word_log_probs(prompts, _flat_words(verbalizer)), verbalizer)

    def class_log_scores(self, prompts: Sequence[Prompt], verbalizer: Verbalizer,
                         rows: Sequence[Any] | None = None) -> torch.Tensor:
        """Class log-scores ``[N, C]`` of one batch as a tensor that gradients flow through (for training).

        Multi-token words are scored in parallel (one pass); nothing is batched or detached here. ``rows``: the
        prompts as :meth:`encode_rows` gave them (tokenized once for every training step), or None.
        """
        if self._linear_readout(prompts):
            return self.prompt_source.readout(self._batch_features(prompts), [_source_of(p) for p in prompts])
        words = _flat_words(verbalizer)
        if rows is not None:  # checked by encode_rows
            return aggregate_word_scores(self._run_batch(self._prepare_batch(rows, words, None), None)[0], verbalizer)
        check_distinct_label_words(self, prompts, verbalizer)
        return aggregate_word_scores(self._batch_word_scores(prompts, words)[0], verbalizer)

    def encode_rows(self, prompts: Sequence[Prompt], verbalizer: Verbalizer) -> list[Any] | None:
        """The prompts tokenized for :meth:`class_log_scores` (``rows=``), or None where that does not apply (a
        linear readout); the prompt source must not change in between."""
        if not prompts or self._linear_readout(prompts):
            return None
        check_distinct_label_words(self, prompts, verbalizer)
        return self._encode_rows(prompts, _flat_words(verbalizer), list(range(len(prompts))), None)

    # -- continuous prompts ------------------------------------------------------------------------
    def _forward(self, **inputs: Any) -> Any:
        """One model call; with a :attr:`prompt_source`, its soft vectors, prefixes or adapters are injected."""
        if self.prompt_source is None:
            return self.model(**inputs)
        return self.prompt_source.forward(self.model, inputs)

    def _linear_readout(self, prompts: Sequence[Prompt]) -> bool:
        """Whether the prompts are read by a linear head (P-tuning v2's readout) instead of label words."""
        if self.prompt_source is None or not prompts:
            return False
        linear = {self.prompt_source.linear(_source_of(p)) for p in prompts}
        if len(linear) > 1:
            raise ConfigError("prompts with a linear readout and prompts with label words in one call")
        return linear.pop()

    def readout_features(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """The hidden states the LM head reads where the label word is predicted, ``[N, H]`` (masked LM: at the
        single mask; causal LM: the last token before the mask), batched, without gradients."""
        result: torch.Tensor | None = None
        order = self._length_order(prompts)
        with torch.inference_mode():
            for chunk in self._batches(order, "features"):
                values = self._batch_features([prompts[i] for i in chunk], chunk).float().cpu()
                if result is None:
                    result = torch.zeros((len(prompts), values.shape[1]))
                result[chunk] = values
        return result if result is not None else torch.zeros((0, 0))

    def readout_log_probs(self, prompts: Sequence[Prompt]) -> np.ndarray:
        """Class log-probabilities of linear readouts, ``[N, C]``, batched, without gradients."""
        features = self.readout_features(prompts)
        with torch.inference_mode():
            out = self.prompt_source.readout(features.to(self.device), [_source_of(p) for p in prompts])
        return out.double().cpu().numpy()

    def _batch_features(self, prompts: Sequence[Prompt], indices: Sequence[int] | None = None) -> torch.Tensor:
        raise NotImplementedError

    def word_log_probs(self, prompts: Sequence[Prompt], words: Sequence[str]) -> np.ndarray:
        """log p(word | prompt) for every prompt and word, ``[N, W]``, batched, without gradients.

        The host work (tokenizing, padding, index arrays) runs in a background thread a few batches ahead of the
        model, so an accelerator never waits for it; the scores stay on the device until the end (one copy back).
        Prompts are tokenized once, in windows of :attr:`SORT_WINDOW` batches, and sorted by token length within
        a window to cut padding (and grouped by shared context first, which a causal LM reuses).
        """
        result = np.zeros((len(prompts), len(words)), dtype=np.float64)
        pending: list[tuple[list[int], torch.Tensor]] = []
        with torch.inference_mode(), self._reusing_contexts(prompts) as call:
            for chunk, prepared in self._prepared_batches(prompts, words, "scoring", call):
                scores, details = self._run_batch(prepared, call)
                if self._needs_refine(details):  # left-to-right decoding: more passes, decided on the host
                    result[chunk] = scores.double().cpu().numpy()
                    self._refine(chunk, details, result)
                else:
                    pending.append((chunk, scores))
            if pending:
                rows = np.fromiter(itertools.chain.from_iterable(c for c, _ in pending), dtype=np.int64)
                result[rows] = torch.cat([v for _, v in pending]).double().cpu().numpy()
        return result

    SORT_WINDOW = 16  # batches tokenized and sorted by length together

    def _prepared_batches(self, prompts: Sequence[Prompt], words: Sequence[str], desc: str,
                          call: Any) -> Iterator[tuple[list[int], Any]]:
        """``(prompt indices, prepared batch)`` for every batch, prepared ahead in a background thread."""
        order = self._group_order(prompts)
        window = self.batch_size * self.SORT_WINDOW

        def produce() -> Iterator[tuple[list[int], Any]]:
            for start in range(0, len(order), window):
                part = order[start:start + window]
                rows = self._encode_rows([prompts[i] for i in part], words, part, call)
                by_length = sorted(range(len(part)), key=lambda k: -rows[k].length)  # stable: ties keep order
                for b in range(0, len(by_length), self.batch_size):
                    picked = by_length[b:b + self.batch_size]
                    yield [part[k] for k in picked], self._prepare_batch([rows[k] for k in picked], words, call)

        show = self._show_progress()
        with tqdm(total=len(order), desc=desc, disable=not show, unit="ex") as bar:
            # up to a window ahead: the next window is tokenized while the model runs this one's batches
            for chunk, prepared in _prefetch(produce(), ahead=len(order) > self.batch_size,
                                             depth=self.SORT_WINDOW + 2):
                yield chunk, prepared
                bar.update(len(chunk))

    def _group_order(self, prompts: Sequence[Prompt]) -> list[int]:
        """Prompt indices in scoring order before length sorting: input order (causal LMs: by shared context)."""
        return list(range(len(prompts)))

    def _show_progress(self) -> bool:
        from ..models.distributed import show_progress

        return show_progress(self.show_progress)

    def _batch_word_scores(self, prompts: Sequence[Prompt], words: Sequence[str],
                           indices: Sequence[int] | None = None) -> tuple[torch.Tensor, Any]:
        """Word log-probabilities ``[len(prompts), W]`` of one batch (gradients flow when enabled), and details
        for :meth:`_refine`. ``indices`` are the prompts' positions in the caller's data, for error messages."""
        indices = list(indices) if indices is not None else list(range(len(prompts)))
        rows = self._encode_rows(prompts, words, indices, None)
        return self._run_batch(self._prepare_batch(rows, words, None), None)

    # The three steps of scoring a batch: the first two are host work (a background thread may run them).
    def _encode_rows(self, prompts: Sequence[Prompt], words: Sequence[str], indices: Sequence[int],
                     call: Any) -> list[Any]:
        """Tokenize prompts (one batched call): one row object per prompt, with a ``length`` for sorting."""
        raise NotImplementedError

    def _prepare_batch(self, rows: Sequence[Any], words: Sequence[str], call: Any) -> Any:
        """Padded tensors (pinned when the model is on a GPU) and index arrays for a batch of encoded rows."""
        raise NotImplementedError

    def _run_batch(self, prepared: Any, call: Any) -> tuple[torch.Tensor, Any]:
        """The model's part: word log-probabilities ``[B, W]`` on the device, and details for :meth:`_refine`."""
        raise NotImplementedError

    def _needs_refine(self, details: Any) -> bool:
        return False

    def _refine(self, chunk: list[int], details: Any, result: np.ndarray) -> None:
        """Hook for decoding that needs more passes (left-to-right multi-token words)."""

    @contextmanager
    def _reusing_contexts(self, prompts: Sequence[Prompt]) -> Iterator[Any]:
        """Hook: while scoring ``prompts``, reuse the computation of the contexts they share (causal LMs); yields
        the call's own state (never kept on the scorer, so several threads may score at once)."""
        yield None

    def _context_text(self, prompt: Prompt) -> str:
        """The text of the prompt's shared context (its first ``prompt.context`` segments); "" when none."""
        if not prompt.context:
            return ""
        return "".join(p.text for p in self._pieces(prompt.segments[:prompt.context], prompt))

    # -- label words --------------------------------------------------------------------------
    def word_ids(self, word: str, anchor: str, separator: str) -> tuple[int, ...]:
        """Token ids of ``word`` as it reads after ``anchor + separator`` (leading-space conventions)."""
        key = (word, anchor, separator)
        if key not in self._word_ids_cache:
            ids = word_token_ids(self.tokenizer, word, anchor, separator)
            if not ids:
                raise VerbalizerError(f"label word {word!r} tokenizes to nothing with this model's tokenizer")
            self._word_ids_cache[key] = ids
        return self._word_ids_cache[key]

    @staticmethod
    def mask_context(prompt: Prompt) -> tuple[str, str]:
        """(anchor, separator): the template text right before the mask, and the whitespace between."""
        return mask_context(prompt)

    # -- running the model --------------------------------------------------------------------
    def _token_lengths(self, prompts: Sequence[Prompt]) -> list[int]:
        """Each prompt's length in tokens (its rendered text, one batched tokenizer call): batches of similar
        token lengths pad ~15 % fewer tokens than batches sorted by characters."""
        if not prompts:
            return []
        return [len(ids) for ids in self._tokenize([p.text for p in prompts], False)]

    def _length_order(self, prompts: Sequence[Prompt], group: Any = None) -> list[int]:
        """Prompt indices, longest first (see :meth:`_token_lengths`); with ``group`` (prompt -> key), prompts
        with the same key are kept together first."""
        lengths = self._token_lengths(prompts)
        if group is None:
            return sorted(range(len(prompts)), key=lambda i: -lengths[i])
        return sorted(range(len(prompts)), key=lambda i: (group(prompts[i]), -lengths[i]))

    def _batches(self, order: Sequence[int], desc: str) -> Iterator[list[int]]:
        show = self._show_progress()
        with tqdm(total=len(order), desc=desc, disable=not show, unit="ex") as bar:
            for start in range(0, len(order), self.batch_size):
                chunk = list(order[start:start + self.batch_size])
                yield chunk
                bar.update(len(chunk))

    def _pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids and attention mask ``[len(rows), longest]`` on the model's device."""
        ids, mask = self._pad_host(rows)
        return self._to_device(ids), self._to_device(mask)

    def _pad_host(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_pad` on the host (pinned for a fast copy when the model is on a GPU); no Python loop per row."""
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        keep = np.arange(int(lengths.max()) if len(rows) else 0) < lengths[:, None]
        ids = np.full(keep.shape, pad, dtype=np.int64)
        ids[keep] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        return self._pinned(torch.from_numpy(ids)), self._pinned(torch.from_numpy(keep.astype(np.int64)))

    def _pinned(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.pin_memory() if self.device.type == "cuda" else tensor

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True)

    def _indices(self, values: Any) -> torch.Tensor:
        """Integer indices from the host on the device, without waiting for the device (a pinned copy)."""
        return self._to_device(self._pinned(torch.as_tensor(values, dtype=torch.long)))

    def _log_probs_at(self, inputs: dict[str, Any], rows: Sequence[int] | torch.Tensor,
                      cols: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, Any]:
        row_t = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        col_t = torch.as_tensor(cols, dtype=torch.long, device=self.device)
        logits, output = self._head.logits(inputs, row_t, col_t)
        return torch.log_softmax(logits.float(), dim=-1), output


def _prefetch(items: Iterable[Any], ahead: bool = True, depth: int = 3) -> Iterator[Any]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the consumer (host work overlaps
    the model's); an exception there is raised here. ``ahead=False``: plain iteration (one small batch)."""
    if not ahead:
        yield from items
        return
    channel: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                channel.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # handed to the consumer
            put(("error", exc))

    worker = threading.Thread(target=work, name="promptlearn-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = channel.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


def vocabulary_size(model: Any) -> int:
    """The width of the model's logits (its output embedding rows)."""
    weight = getattr(model.get_output_embeddings(), "weight", None)
    return int(weight.shape[0]) if weight is not None else int(model.config.vocab_size)


def _fill_rows(result: torch.Tensor | None, n: int, chunk: list[int], log_probs: torch.Tensor) -> torch.Tensor:
    """Put a batch's ``[B, V]`` log-probabilities at rows ``chunk`` of an ``[n, V]`` result (made on first use)."""
    if result is None:
        result = torch.zeros((n, log_probs.shape[1]))
    result[chunk] = log_probs.float().cpu()
    return result
