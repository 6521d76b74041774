"""A training run's state and its checkpoint folder: what a run did so far (:class:`TrainingResult`), what a
checkpoint holds (weights, the best weights, optimizer and scheduler state, ``trainer_state.json``), and
writing and reading it (:class:`Checkpointing`, a base of :class:`~promptlearn.pipeline.training.Trainer`).

A checkpoint is written atomically and read only for the same model (:func:`fingerprint`), hyper-parameters
and data; the fields that only say when checkpoints are written may differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..core.errors import ConfigError, TrainingError
from ..io.artifacts import atomic_directory, atomic_write_text, recover_directory

#: The training loop's logger (:mod:`promptlearn.pipeline.training`): every line of a run goes to it.
logger = logging.getLogger("promptlearn.pipeline.training")

CHECKPOINT_NAME = "checkpoint"


#: TrainingConfig fields that only say when checkpoints are written: a checkpoint resumes whatever their values.
_CHECKPOINT_SCHEDULE = ("checkpoint_every", "checkpoint_seconds")


def _result_config(config: dict[str, Any]) -> dict[str, Any]:
    """A saved or current config without the fields that do not change the result (compared on resume)."""
    return {k: v for k, v in config.items() if k not in _CHECKPOINT_SCHEDULE}


@dataclass
class TrainingResult:
    """What a run did: steps taken, the selected step and its dev metric, and the loss/metric history."""

    steps: int
    best_step: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the model's class and parameter names and shapes (checkpoints must match it)."""
    digest = hashlib.sha256(type(model).__name__.encode())
    for name, parameter in model.named_parameters():
        digest.update(f"{name}:{tuple(parameter.shape)};".encode())
    return digest.hexdigest()[:16]


#: ``RunState.best`` when the best weights are the current ones: copied only once a later step is about to change them,
#: so a run evaluated only at its last step (the default) never holds a second copy of the weights.
CURRENT_WEIGHTS = "current"


@dataclass
class RunState:
    """The state of a run that a checkpoint holds: the result so far, the best weights (a copy, :data:`CURRENT_WEIGHTS`
    or None), the evaluations without gain, and ``pending``: the record of a finished step whose evaluation and
    bookkeeping have not run yet (an interruption came in between; a resumed run does them first)."""

    result: TrainingResult
    best: dict[str, torch.Tensor] | str | None = None
    waited: int = 0
    pending: dict[str, float] | None = None


class Checkpointing:
    """Writing and reading a :class:`~promptlearn.pipeline.training.Trainer`'s checkpoint (a base of it, which
    sets what these methods read: ``model``, ``config``, ``parameters``, ``optimizer``, ``scheduler``,
    ``n_examples``, ``total_steps``, ``checkpoint_dir``, ``state`` and ``_deferred_signals``; saving sets
    ``_saved`` and ``_last_checkpoint_time``)."""

    def _save_checkpoint(self, run: RunState) -> None:
        from safetensors.torch import save_file

        self._last_checkpoint_time = time.monotonic()
        if not self.state.is_main_process:
            return
        target = self.checkpoint_dir / CHECKPOINT_NAME  # type: ignore[operator]
        with self._deferred_signals():  # a signal waits until the checkpoint is complete
            with atomic_directory(target, overwrite=True) as tmp:
                save_file({n: p.detach().cpu().contiguous() for n, p in self.parameters.items()},
                          str(tmp / "weights.safetensors"))
                if isinstance(run.best, dict):
                    save_file({n: t.contiguous() for n, t in run.best.items()}, str(tmp / "best.safetensors"))
                torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                           tmp / "optimizer.pt")
                atomic_write_text(tmp / "trainer_state.json", json.dumps({
                    "fingerprint": fingerprint(self.model), "config": asdict(self.config),
                    "n_examples": self.n_examples, "total_steps": self.total_steps, "result": asdict(run.result),
                    "evaluations_without_gain": run.waited, "pending": run.pending,
                    "best": ("weights" if run.best == CURRENT_WEIGHTS
                             else "best.safetensors" if run.best is not None else None),
                }, indent=2) + "\n")
            self._saved = (run.result.steps, run.pending is not None)
            self._last_checkpoint_time = time.monotonic()

    def _load_checkpoint(self) -> RunState | None:
        from safetensors.torch import load_file

        if self.checkpoint_dir is None:
            raise ConfigError("resume=True needs a checkpoint folder")
        folder = self.checkpoint_dir / CHECKPOINT_NAME
        if self.state.is_main_process:  # the others read the checkpoint only once it is recovered
            recover_directory(folder)
        if self.state.num_processes > 1:
            from ..models.distributed import barrier

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
        if (_result_config(saved["config"]) != _result_config(asdict(self.config))
                or saved["n_examples"] != self.n_examples):
            raise TrainingError(f"the checkpoint in {folder} was written with other hyper-parameters or data; "
                                "resume with the same settings, or start a new run")
        self._load_weights(load_file(str(folder / "weights.safetensors")))
        states = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(states["optimizer"])
        self.scheduler.load_state_dict(states["scheduler"])
        del states
        best: dict[str, torch.Tensor] | str | None = None
        if saved.get("best") == "weights":  # the best weights were the checkpoint's own
            best = CURRENT_WEIGHTS
        elif (folder / "best.safetensors").exists():
            best = load_file(str(folder / "best.safetensors"))
        return RunState(TrainingResult(**saved["result"]), best, int(saved["evaluations_without_gain"]),
                        saved.get("pending"))

    def _copy_weights(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu().clone() for n, p in self.parameters.items()}

    def _load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, parameter in self.parameters.items():
                parameter.copy_(weights[name].to(parameter.device))
