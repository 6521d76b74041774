"""The training loop shared by prompt-based fine-tuning, the baselines and masked-LM adaptation.

One loop, given a loss over a batch of example indices: AdamW with linear warm-up and decay,
gradient accumulation, gradient clipping, periodic evaluation with early stopping and selection of
the best weights, atomic checkpoints, and exact resumption. Every step reseeds torch from
``(seed, step)`` and every epoch's order comes from ``(seed, epoch)``, so a run resumed from a
checkpoint ends with the same weights as an uninterrupted one. Several processes (``accelerate
launch``, ``torchrun``) split each batch and average their gradients: ``batch_size`` is the global batch (not per
device, as in transformers' Trainer), each process computes the loss of its slice, weighted by the slice's share,
so the averaged gradient is the one-process gradient; only the main process saves checkpoints, logs and shows
progress (see :mod:`promptlearn.distributed`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .artifacts import atomic_directory, atomic_write_text, recover_directory
from .errors import ConfigError, TrainingError

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint"


@dataclass
class TrainingConfig:
    """Hyper-parameters of one run; ``max_steps`` (optimizer steps) overrides ``epochs``."""

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
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class TrainingResult:
    """What a run did: steps taken, the selected step and its dev metric, and the loss/metric history."""

    steps: int
    best_step: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def step_seed(seed: int, step: int) -> int:
    """A distinct torch seed for every (run seed, step) pair, so a resumed run draws the same dropout/masks."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the model's class and parameter names and shapes (checkpoints must match it)."""
    digest = hashlib.sha256(type(model).__name__.encode())
    for name, parameter in model.named_parameters():
        digest.update(f"{name}:{tuple(parameter.shape)};".encode())
    return digest.hexdigest()[:16]


def _distributed() -> Any:
    from .distributed import state

    return state()


class Trainer:
    """Runs :class:`TrainingConfig` on ``model``'s trainable parameters with ``loss_fn(indices) -> loss``."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[[list[int]], torch.Tensor], n_examples: int,
                 config: TrainingConfig, *, evaluate: Callable[[], float] | None = None,
                 checkpoint_dir: str | Path | None = None, show_progress: bool | None = None,
                 description: str = "training") -> None:
        config.validate()
        if n_examples < 1:
            raise ConfigError("nothing to train on: no training examples")
        self.model = model
        self.loss_fn = loss_fn
        self.n_examples = n_examples
        self.config = config
        self.evaluate = evaluate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.show_progress = show_progress
        self.description = description
        self.parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
        if not self.parameters:
            raise ConfigError("the model has no trainable parameters")
        self.state = _distributed()
        per_step = config.batch_size * config.gradient_accumulation_steps
        self.total_steps = config.max_steps or max(1, math.ceil(config.epochs * n_examples / per_step))
        self.optimizer = torch.optim.AdamW(self._groups(), lr=config.learning_rate, foreach=True)
        from transformers import get_linear_schedule_with_warmup

        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(config.warmup_ratio * self.total_steps), self.total_steps)

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
        result = TrainingResult(steps=0)
        best_weights: dict[str, torch.Tensor] | None = None
        evaluations_without_gain = 0
        if resume:
            loaded = self._load_checkpoint()
            if loaded is not None:
                result, best_weights, evaluations_without_gain = loaded
                if self.state.is_main_process:
                    logger.info("resumed from %s at step %d", self.checkpoint_dir, result.steps)
        config = self.config
        show = self.show_progress if self.show_progress is not None else sys.stderr.isatty()
        show = show and self.state.is_main_process
        was_training = self.model.training
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices), tqdm(total=self.total_steps, initial=result.steps,
                                                          desc=self.description, disable=not show) as bar:
            self.model.train()
            while result.steps < self.total_steps and not result.stopped_early:
                step = result.steps
                torch.manual_seed(step_seed(config.seed, step))
                loss_value = 0.0
                for micro in range(config.gradient_accumulation_steps):
                    indices, share = self._local_batch(step * config.gradient_accumulation_steps + micro)
                    loss = self.loss_fn(indices) / config.gradient_accumulation_steps
                    if share != 1.0:  # several processes, uneven slices
                        loss = loss * share
                    if not torch.isfinite(loss) and self.state.num_processes == 1:
                        self.optimizer.zero_grad(set_to_none=True)
                        raise TrainingError(self._nan_message(step))
                    loss.backward()
                    loss_value += float(self._global_loss(loss))
                if not math.isfinite(loss_value):  # several processes: every one sees the same (global) loss
                    self.optimizer.zero_grad(set_to_none=True)
                    raise TrainingError(self._nan_message(step))
                self._average_gradients()
                torch.nn.utils.clip_grad_norm_(list(self.parameters.values()), config.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                result.steps = step + 1
                record = {"step": result.steps, "loss": round(loss_value, 6)}
                if self.evaluate is not None and self._due(config.eval_every, result.steps):
                    metric = self._run_evaluation()
                    record["dev"] = metric
                    if result.best_metric is None or metric > result.best_metric:
                        result.best_metric, result.best_step = metric, result.steps
                        best_weights = {n: p.detach().cpu().clone() for n, p in self.parameters.items()}
                        evaluations_without_gain = 0
                    else:
                        evaluations_without_gain += 1
                        if config.patience is not None and evaluations_without_gain >= config.patience:
                            result.stopped_early = True
                result.history.append(record)
                bar.set_postfix({k: v for k, v in record.items() if k != "step"})
                bar.update(1)
                if self.checkpoint_dir is not None and (self._due(config.checkpoint_every, result.steps)
                                                        or result.steps == self.total_steps or result.stopped_early):
                    self._save_checkpoint(result, best_weights, evaluations_without_gain)
        if best_weights is not None:
            self._load_weights(best_weights)
        self.model.train(was_training)
        return result

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
        from .distributed import all_reduce_sum

        return all_reduce_sum(loss.detach().float()) / self.state.num_processes

    def _average_gradients(self) -> None:
        if self.state.num_processes == 1:
            return
        from .distributed import all_reduce_mean_

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

    # -- checkpoints ----------------------------------------------------------------------------
    def _save_checkpoint(self, result: TrainingResult, best: dict[str, torch.Tensor] | None, waited: int) -> None:
        from safetensors.torch import save_file

        if not self.state.is_main_process:
            return
        target = self.checkpoint_dir / CHECKPOINT_NAME  # type: ignore[operator]
        with atomic_directory(target, overwrite=True) as tmp:
            save_file({n: p.detach().cpu().contiguous() for n, p in self.parameters.items()},
                      str(tmp / "weights.safetensors"))
            if best is not None:
                save_file({n: t.contiguous() for n, t in best.items()}, str(tmp / "best.safetensors"))
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                       tmp / "optimizer.pt")
            atomic_write_text(tmp / "trainer_state.json", json.dumps({
                "fingerprint": fingerprint(self.model), "config": asdict(self.config),
                "n_examples": self.n_examples, "total_steps": self.total_steps, "result": asdict(result),
                "evaluations_without_gain": waited,
            }, indent=2) + "\n")

    def _load_checkpoint(self) -> tuple[TrainingResult, dict[str, torch.Tensor] | None, int] | None:
        from safetensors.torch import load_file

        if self.checkpoint_dir is None:
            raise ConfigError("resume=True needs a checkpoint folder")
        folder = self.checkpoint_dir / CHECKPOINT_NAME
        if self.state.is_main_process:  # the others read the checkpoint only once it is recovered
            recover_directory(folder)
        if self.state.num_processes > 1:
            from .distributed import barrier

            barrier()
        if not folder.is_dir():
            logger.info("no checkpoint in %s; starting from scratch", self.checkpoint_dir)
            return None
        try:
            saved = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingError(f"cannot read the checkpoint in {folder}: {exc}") from None
        if saved.get("fingerprint") != fingerprint(self.model):
            raise TrainingError(f"the checkpoint in {folder} was written for another model (or other trainable "
                                "parameters); use a new output folder or the same model and options")
        if saved["config"] != asdict(self.config) or saved["n_examples"] != self.n_examples:
            raise TrainingError(f"the checkpoint in {folder} was written with other hyper-parameters or data; "
                                "resume with the same settings, or start a new run")
        self._load_weights(load_file(str(folder / "weights.safetensors")))
        states = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(states["optimizer"])
        self.scheduler.load_state_dict(states["scheduler"])
        best = load_file(str(folder / "best.safetensors")) if (folder / "best.safetensors").exists() else None
        return TrainingResult(**saved["result"]), best, int(saved["evaluations_without_gain"])

    def _load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, parameter in self.parameters.items():
                parameter.copy_(weights[name].to(parameter.device))


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
