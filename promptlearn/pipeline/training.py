"""The training loop shared by prompt-based fine-tuning, the baselines and masked-LM adaptation.

One loop, given a loss over a batch of example indices: AdamW with linear warm-up and decay,
gradient accumulation, gradient clipping, periodic evaluation with early stopping and selection of
the best weights, atomic checkpoints, and exact resumption. Every step reseeds torch from
``(seed, step)`` and every epoch's order comes from ``(seed, epoch)``, so a run resumed from a
checkpoint ends with the same weights as an uninterrupted one. Several processes (``accelerate
launch``, ``torchrun``) split each batch and average their gradients: ``batch_size`` is the global batch (not per
device, as in transformers' Trainer), each process computes the loss of its slice, weighted by the slice's share,
so the averaged gradient is the one-process gradient; only the main process saves checkpoints, logs and shows
progress (see :mod:`promptlearn.models.distributed`).

Progress goes to :mod:`logging` (logger ``promptlearn.pipeline.training``, level INFO), so it reaches a log file or a pipe
as well as a terminal: the plan (steps = epochs x batches) before the first step, a time estimate after the
third, then a line with the step, loss, learning rate, examples/s, elapsed time and ETA every ``log_every``
steps or ``log_seconds`` seconds, whichever comes first. A tqdm bar shows on a terminal (``show_progress``).
With a checkpoint folder, Ctrl-C (SIGINT) and SIGTERM save a checkpoint of the last finished step before
training stops (:class:`TrainingInterrupted`), and checkpoints are also written every ``checkpoint_every``
steps and ``checkpoint_seconds`` seconds. The progress lines are :mod:`.progress`'s, the checkpoint's format
and its writing and reading :mod:`.checkpoints`'s.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.errors import ConfigError, TrainingError
from ..models.distributed import show_progress as progress_shown
from .checkpoints import CHECKPOINT_NAME, CURRENT_WEIGHTS, Checkpointing, RunState, TrainingResult
from .progress import Progress

logger = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """Hyper-parameters of one run; ``max_steps`` (optimizer steps) overrides ``epochs``.

    ``checkpoint_every`` (steps) and ``checkpoint_seconds`` (wall-clock seconds since the last checkpoint) say when a
    run with a checkpoint folder saves one, besides the last step; they do not change the result, so a run may be
    resumed with other values.
    """

    learning_rate: float = 1e-5
    epochs: float = 10.0
    max_steps: int | None = None
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_every: int | None = None
    patience: int | None = None
    checkpoint_every: int | None = None
    seed: int = 0
    checkpoint_seconds: float | None = None

    def validate(self) -> None:
        positive = {"learning_rate": self.learning_rate, "epochs": self.epochs, "batch_size": self.batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        for name in ("max_steps", "eval_every", "patience", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 (or None), got {value}")
        if self.checkpoint_seconds is not None and not self.checkpoint_seconds > 0:
            raise ConfigError(f"checkpoint_seconds must be > 0 (or None), got {self.checkpoint_seconds}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


def step_seed(seed: int, step: int) -> int:
    """A distinct torch seed for every (run seed, step) pair, so a resumed run draws the same dropout/masks."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _distributed() -> Any:
    from ..models.distributed import state

    return state()


def plan_steps(config: TrainingConfig, n_examples: int) -> int:
    """The optimizer steps a run of ``config`` on ``n_examples`` takes (before any early stopping)."""
    per_step = config.batch_size * config.gradient_accumulation_steps
    return config.max_steps or max(1, math.ceil(config.epochs * n_examples / per_step))


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT) or SIGTERM; the checkpoint of the last finished step was saved first.

    A ``KeyboardInterrupt``, so code that handles Ctrl-C handles it too. ``signal``: the signal's number
    (``exit_status``: 128 + it, the shell's convention: 130 for Ctrl-C, 143 for SIGTERM); ``step`` / ``total``:
    the steps finished and planned; ``checkpoint``: the checkpoint folder that holds step ``step`` (None when
    nothing could be saved: no checkpoint folder, not the main process, or no step had finished).
    """

    def __init__(self, signum: int, step: int | None = None, total: int | None = None,
                 checkpoint: Path | None = None) -> None:
        super().__init__(signum)
        self.signal = signum
        self.step = step
        self.total = total
        self.checkpoint = checkpoint

    @property
    def exit_status(self) -> int:
        return 128 + int(self.signal)

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signal).name
        except ValueError:  # pragma: no cover - an unknown number
            return f"signal {self.signal}"

    def __str__(self) -> str:
        where = f" at step {self.step} of {self.total}" if self.step is not None else ""
        saved = (f"; checkpoint saved in {self.checkpoint}" if self.checkpoint is not None
                 else "; no checkpoint saved" if self.step else "")
        return f"training interrupted ({self.signal_name}){where}{saved}"


class Trainer(Checkpointing):
    """Runs :class:`TrainingConfig` on ``model``'s trainable parameters with ``loss_fn(indices) -> loss``.

    Progress goes to :mod:`logging` (logger ``promptlearn.pipeline.training``, INFO; see
    :class:`.progress.Progress`): a line every ``log_every`` steps or ``log_seconds`` seconds, whichever comes first
    (None: no such limit), plus a tqdm bar where ``show_progress`` is True (None: when stderr is a terminal).

    With a ``checkpoint_dir``, Ctrl-C (SIGINT) and SIGTERM during :meth:`train` save a checkpoint of the last
    finished step and raise :class:`TrainingInterrupted` (``handle_signals=False`` leaves the signals alone). A
    signal during a forward or backward pass stops it at once (that step is redone on resume); one during the
    optimizer's update or a checkpoint's save takes effect once that is done, so a checkpoint is always of a
    whole step. A second Ctrl-C while the interrupt's checkpoint is saved stops without it (the previous
    checkpoint stays). Handlers are installed only in the main thread and only for signals not ignored.

    ``split(indices) -> parts``: computes a micro-batch in several forward/backward passes (the caller bounds
    the activation memory of one pass, e.g. by tokens); each part's mean loss is weighted by its share of the
    examples, so the gradient is the micro-batch's (up to float rounding). The parts must cover ``indices``.
    """

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[[list[int]], torch.Tensor], n_examples: int,
                 config: TrainingConfig, *, evaluate: Callable[[], float] | None = None,
                 checkpoint_dir: str | Path | None = None, show_progress: bool | None = None,
                 description: str = "training", log_every: int | None = 10, log_seconds: float | None = 30.0,
                 handle_signals: bool = True, split: Callable[[list[int]], list[list[int]]] | None = None) -> None:
        config.validate()
        if n_examples < 1:
            raise ConfigError("nothing to train on: no training examples")
        if log_every is not None and log_every < 1:
            raise ConfigError(f"log_every must be >= 1 (or None), got {log_every}")
        self.model = model
        self.loss_fn = loss_fn
        self.n_examples = n_examples
        self.config = config
        self.evaluate = evaluate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.show_progress = show_progress
        self.description = description
        self.log_every = log_every
        self.log_seconds = log_seconds
        self.handle_signals = handle_signals
        self.split = split
        self.parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
        if not self.parameters:
            raise ConfigError("the model has no trainable parameters")
        self.state = _distributed()
        self.total_steps = plan_steps(config, n_examples)
        self.optimizer = self._optimizer()
        from transformers import get_linear_schedule_with_warmup

        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(config.warmup_ratio * self.total_steps), self.total_steps)
        self._stop_signal: int | None = None  # a signal received while its effect was deferred
        self._deferring = 0  # > 0: inside an update or a save, which a signal must not cut in two
        self._saved: tuple[int, bool] | None = None  # (steps, pending) of the last checkpoint this run wrote
        self._last_checkpoint_time = time.monotonic()

    def _optimizer(self) -> torch.optim.Optimizer:
        """AdamW, fused (one pass over each tensor, no temporary copies) where torch supports it for the
        parameters (float32/bfloat16 on CPU or CUDA), else the multi-tensor implementation. The multi-tensor
        one allocates temporaries as large as all trainable parameters together at every step: for a 135M-parameter
        model ~0.5 GB more peak memory. A resumed run keeps the implementation its checkpoint was written with."""
        groups = self._groups()
        parameters = list(self.parameters.values())
        fusable = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.bfloat16)
                      for p in parameters) and len({p.device for p in parameters}) == 1
        if fusable:
            try:
                return torch.optim.AdamW(groups, lr=self.config.learning_rate, fused=True)
            except (RuntimeError, TypeError, ValueError):  # pragma: no cover - a torch without fused AdamW here
                pass
        return torch.optim.AdamW(groups, lr=self.config.learning_rate, foreach=True)

    def _groups(self) -> list[dict[str, Any]]:
        decay = [p for n, p in self.parameters.items() if p.ndim > 1 and "norm" not in n.lower()]
        no_decay = [p for n, p in self.parameters.items() if not (p.ndim > 1 and "norm" not in n.lower())]
        return [{"params": decay, "weight_decay": self.config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    # -- data order -----------------------------------------------------------------------------
    def batch_indices(self, micro_batch: int) -> list[int]:
        """Example indices of a global micro-batch number, this process's slice: epochs are seeded permutations."""
        return self._local_batch(micro_batch)[0]

    def _global_batch(self, micro_batch: int) -> list[int]:
        size = self.config.batch_size
        per_epoch = math.ceil(self.n_examples / size)
        epoch, within = divmod(micro_batch, per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(self.n_examples)
        return order[within * size:(within + 1) * size].tolist()

    def _global_batch_size(self, micro_batch: int) -> int:
        """How many examples a global micro-batch holds (the last of an epoch may be short)."""
        size = self.config.batch_size
        within = micro_batch % math.ceil(self.n_examples / size)
        return min(size, self.n_examples - within * size)

    def _local_batch(self, micro_batch: int) -> tuple[list[int], float]:
        """This process's slice of a global micro-batch, and the weight of its mean loss: its share of the batch
        times the number of processes, so that the averaged gradient is the global batch's (a process left
        without examples computes one with weight 0, to take part in the averaging)."""
        chunk = self._global_batch(micro_batch)
        count = self.state.num_processes
        if count == 1:
            return chunk, 1.0
        mine = chunk[self.state.process_index::count]
        return (mine, len(mine) * count / len(chunk)) if mine else (chunk[:1], 0.0)

    # -- the loop -------------------------------------------------------------------------------
    def train(self, *, resume: bool = False) -> TrainingResult:
        """Run (or, with ``resume``, continue from the checkpoint) to the last step or early stopping; the best
        dev weights are loaded at the end where there was an evaluation. Raises :class:`TrainingInterrupted`
        after saving a checkpoint when Ctrl-C or SIGTERM arrives (see the class docstring)."""
        run = RunState(TrainingResult(steps=0))
        if resume:
            loaded = self._load_checkpoint()
            if loaded is not None:
                run = loaded
                self._saved = (run.result.steps, run.pending is not None)
                if self.state.is_main_process:
                    logger.info("resumed from %s at step %d", self.checkpoint_dir, run.result.steps)
        show = progress_shown(self.show_progress)
        progress = Progress(self, run.result.steps, self.log_every, self.log_seconds, self.state.is_main_process)
        progress.plan()
        self._last_checkpoint_time = time.monotonic()
        was_training = self.model.training
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            with torch.random.fork_rng(devices=devices), self._signals() as signals, \
                    tqdm(total=self.total_steps, initial=run.result.steps, desc=self.description,
                         disable=not show) as bar:
                self.model.train()
                try:
                    if run.pending is not None:  # an interruption came between a step and its evaluation
                        self._finish_step(run, bar, progress, self.optimizer.param_groups[0]["lr"], 0)
                        self._checkpoint_if_due(run)
                    while run.result.steps < self.total_steps and not run.result.stopped_early:
                        learning_rate, examples = self._step(run)
                        self._finish_step(run, bar, progress, learning_rate, examples)
                        self._checkpoint_if_due(run)
                except TrainingInterrupted as exc:
                    signals.restore()  # a second Ctrl-C while saving stops at once; the last checkpoint stays
                    self._interrupted(run, exc)
                    raise
        finally:
            self.model.train(was_training)
        if isinstance(run.best, dict):
            self._load_weights(run.best)
        return run.result

    def _step(self, run: RunState) -> tuple[float, int]:
        """One optimizer step; leaves its record in ``run.pending``. Returns the step's learning rate and examples."""
        config = self.config
        step = run.result.steps
        if run.best == CURRENT_WEIGHTS:  # this step changes the best weights: keep a copy first
            run.best = self._copy_weights()
        torch.manual_seed(step_seed(config.seed, step))
        loss_value = 0.0
        examples = 0
        for micro in range(config.gradient_accumulation_steps):
            number = step * config.gradient_accumulation_steps + micro
            indices, share = self._local_batch(number)
            examples += self._global_batch_size(number)
            parts = self.split(indices) if self.split is not None and len(indices) > 1 else [indices]
            local = None
            for part in parts:  # one forward/backward pass each: their gradients sum to the micro-batch's
                loss = self.loss_fn(part) / config.gradient_accumulation_steps
                weight = share * len(part) / len(indices)  # share: several processes, uneven slices
                if weight != 1.0:
                    loss = loss * weight
                if not torch.isfinite(loss) and self.state.num_processes == 1:
                    self.optimizer.zero_grad(set_to_none=True)
                    raise TrainingError(self._nan_message(step))
                loss.backward()
                local = loss.detach() if local is None else local + loss.detach()
            loss_value += float(self._global_loss(local))  # once per micro-batch: every process the same count
        if not math.isfinite(loss_value):  # several processes: every one sees the same (global) loss
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingError(self._nan_message(step))
        self._average_gradients()
        with self._deferred_signals():  # the update is never cut in two: a checkpoint holds whole steps
            torch.nn.utils.clip_grad_norm_(list(self.parameters.values()), config.max_grad_norm)
            learning_rate = float(self.optimizer.param_groups[0]["lr"])
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            run.result.steps = step + 1
            run.pending = {"step": run.result.steps, "loss": round(loss_value, 6)}
        return learning_rate, examples

    def _finish_step(self, run: RunState, bar: Any, progress: Progress, learning_rate: float, examples: int) -> None:
        """The step's evaluation (when due; an interruption here is saved as pending), its record, and progress."""
        record = dict(run.pending or {})
        result, metric = run.result, None
        if self.evaluate is not None and self._due(self.config.eval_every, result.steps):
            metric = self._run_evaluation()
        with self._deferred_signals():
            if metric is not None:
                record["dev"] = metric
                if result.best_metric is None or metric > result.best_metric:
                    result.best_metric, result.best_step = metric, result.steps
                    run.best = CURRENT_WEIGHTS
                    run.waited = 0
                else:
                    run.waited += 1
                    if self.config.patience is not None and run.waited >= self.config.patience:
                        result.stopped_early = True
            result.history.append(record)
            run.pending = None
        bar.set_postfix({k: v for k, v in record.items() if k != "step"})
        bar.update(1)
        if examples:
            progress.update(result.steps, record["loss"], learning_rate, examples, metric)

    def _checkpoint_if_due(self, run: RunState) -> None:
        if self.checkpoint_dir is None:
            return
        steps, config = run.result.steps, self.config
        timed = (config.checkpoint_seconds is not None
                 and time.monotonic() - self._last_checkpoint_time >= config.checkpoint_seconds)
        if self._due(config.checkpoint_every, steps) or run.result.stopped_early or timed:
            self._save_checkpoint(run)

    def _due(self, every: int | None, steps: int) -> bool:
        return steps == self.total_steps or (every is not None and steps % every == 0)

    def _run_evaluation(self) -> float:
        self.model.eval()
        try:
            return float(self.evaluate())  # type: ignore[misc]
        finally:
            self.model.train()

    def _global_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The micro-batch's loss over all processes (their weighted slice losses average to it)."""
        if self.state.num_processes == 1:
            return loss.detach()
        from ..models.distributed import all_reduce_sum

        return all_reduce_sum(loss.detach().float()) / self.state.num_processes

    def _average_gradients(self) -> None:
        if self.state.num_processes == 1:
            return
        from ..models.distributed import all_reduce_mean_

        parameters = list(self.parameters.values())
        # A parameter no process used keeps no gradient (AdamW skips it, as with one process); one that only some
        # processes' slices used gets a zero gradient in the others, so that every process averages the same list.
        used = torch.tensor([float(p.grad is not None) for p in parameters], device=parameters[0].device)
        all_reduce_mean_([used])
        for parameter, anywhere in zip(parameters, used.tolist()):
            if anywhere and parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        all_reduce_mean_(p.grad for p in parameters if p.grad is not None)

    def _nan_message(self, step: int) -> str:
        where = (f"; the last good checkpoint is in {self.checkpoint_dir / CHECKPOINT_NAME}"
                 if self.checkpoint_dir is not None and (self.checkpoint_dir / CHECKPOINT_NAME).exists()
                 else "")
        return (f"the training loss is not finite (NaN or inf) at step {step + 1}{where}; lower the learning rate "
                f"(now {self.config.learning_rate}) or check the data")

    # -- Ctrl-C and SIGTERM ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _signals(self) -> Iterator[_Handlers]:
        """Ctrl-C and SIGTERM handlers for the run (see the class docstring); restored on the way out."""
        handlers = _Handlers(self)
        if self.handle_signals and self.checkpoint_dir is not None:
            handlers.install()
        try:
            yield handlers
        finally:
            handlers.restore()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._deferring:
            self._stop_signal = signum  # raised once the update or save in progress is done
            return
        raise TrainingInterrupted(signum)

    @contextlib.contextmanager
    def _deferred_signals(self) -> Iterator[None]:
        """A section a signal must not cut: its effect waits until the section is done."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if not self._deferring and self._stop_signal is not None:
            signum, self._stop_signal = self._stop_signal, None
            raise TrainingInterrupted(signum)

    def _interrupted(self, run: RunState, exc: TrainingInterrupted) -> None:
        """Save the checkpoint of the last finished step (if not saved already) and fill in ``exc``."""
        exc.step, exc.total = run.result.steps, self.total_steps
        if self.checkpoint_dir is None or not self.state.is_main_process or run.result.steps == 0:
            return
        folder = self.checkpoint_dir / CHECKPOINT_NAME
        if self._saved != (run.result.steps, run.pending is not None):
            logger.warning("%s: interrupted (%s); saving a checkpoint at step %d of %d (Ctrl-C again to stop without "
                           "it)", self.description, exc.signal_name, run.result.steps, self.total_steps)
            self._save_checkpoint(run)
        exc.checkpoint = folder


class _Handlers:
    """The trainer's SIGINT / SIGTERM handlers while it runs, and the handlers they replaced."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (and only it receives signals)
        for name in self.SIGNALS:
            number = getattr(signal, name, None)
            if number is None:  # pragma: no cover - e.g. a platform without SIGTERM
                continue
            current = signal.getsignal(number)
            if current in (signal.SIG_IGN, None):  # ignored (nohup, a background job) or set outside Python
                continue
            self.previous[number] = current
            signal.signal(number, self.trainer._on_signal)

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}


def freeze(model: torch.nn.Module, trainable: str) -> None:
    """Choose what trains: ``all``; ``no_embeddings`` (freeze the embeddings); ``bottom_frozen:N`` (freeze the
    embeddings and the lowest N layers); ``top:N`` (only the top N layers and the head train)."""
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    if trainable == "all":
        return
    kind, _, count = trainable.partition(":")
    layers = _layers(model)
    if kind == "no_embeddings" and not count:
        frozen_layers = 0
    elif kind in ("bottom_frozen", "top") and count.isdigit():
        n = int(count)
        if n > len(layers):
            raise ConfigError(f"trainable={trainable!r}: the model has only {len(layers)} layers")
        frozen_layers = n if kind == "bottom_frozen" else len(layers) - n
    else:
        raise ConfigError(f"trainable={trainable!r} is not one of: all, no_embeddings, bottom_frozen:N, top:N")
    model.get_input_embeddings().requires_grad_(False)
    embeddings_module = _embeddings_module(model)
    if embeddings_module is not None:
        embeddings_module.requires_grad_(False)
    for layer in layers[:frozen_layers]:
        layer.requires_grad_(False)
    # A head tied to the input embeddings stays tied: it trains only if the embeddings do.


def _layers(model: torch.nn.Module) -> Sequence[torch.nn.Module]:
    """The transformer blocks, bottom first (the longest ModuleList in the model)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ConfigError(f"cannot find the layers of {type(model).__name__} to freeze")
    return max(lists, key=len)


def _embeddings_module(model: torch.nn.Module) -> torch.nn.Module | None:
    """The whole embeddings block (word, position, type embeddings and their norm) where the model has one."""
    base = getattr(model, model.base_model_prefix, model) if getattr(model, "base_model_prefix", "") else model
    return getattr(base, "embeddings", None)


def language_model_loss(loaded: Any, scorer: Any, prompts: Sequence[Any], mlm_probability: float = 0.15) -> torch.Tensor:
    """PET's auxiliary loss on rendered unlabelled prompts: masked-LM loss (15 % of the tokens, never the
    prompt's own [MASK] slot) for masked LMs, next-token loss on the text before the mask for causal LMs.

    The masking uses torch's global generator, which :class:`Trainer` reseeds every step.
    """
    from transformers import DataCollatorForLanguageModeling

    if loaded.kind == "masked":
        rows = scorer._rows(prompts, [(i, 1) for i in range(len(prompts))])
    else:
        rows = scorer._encode([scorer._prefix_pieces(p) for p in prompts], [scorer.max_length] * len(prompts), True,
                              [f"unlabelled example {i}" for i in range(len(prompts))])
    collator = DataCollatorForLanguageModeling(loaded.tokenizer, mlm=loaded.kind == "masked",
                                               mlm_probability=mlm_probability)
    batch = collator([{"input_ids": row} for row in rows])
    batch = {k: v.to(scorer.device) for k, v in batch.items()}
    if not bool((batch["labels"] != -100).any()):  # short prompts: nothing was masked, nothing to learn
        return torch.zeros((), device=scorer.device)
    return loaded.model(**batch).loss
