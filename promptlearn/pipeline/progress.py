"""A training run's progress through :mod:`logging`: the plan, a time estimate, a line every few steps or seconds.

The lines go to the training loop's logger, ``promptlearn.pipeline.training`` (INFO): the CLI shows that one, and
the README and the tests name it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

#: The training loop's logger (:mod:`promptlearn.pipeline.training`): every line of a run goes to it.
logger = logging.getLogger("promptlearn.pipeline.training")


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour) for a progress line."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rough_duration(seconds: float) -> str:
    """``~40 s``, ``~17 min`` or ``~2.5 h``: a time estimate as a person says it."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


class Progress:
    """Progress through :mod:`logging` (logger ``promptlearn.pipeline.training``, INFO): the plan before the first step,
    a time estimate after the first :data:`ESTIMATE_AFTER` steps, then a line (step, loss, learning rate,
    examples/s, elapsed time, ETA) every ``every`` steps or ``seconds`` seconds, whichever comes first, and at
    the last step. Only the main process logs. ``trainer``: the :class:`~promptlearn.pipeline.training.Trainer`
    whose run it follows (its ``total_steps``, ``config``, ``n_examples`` and ``description``)."""

    ESTIMATE_AFTER = 3

    def __init__(self, trainer: Any, start_step: int, every: int | None, seconds: float | None,
                 enabled: bool) -> None:
        self.trainer = trainer
        self.total = trainer.total_steps
        self.start_step = start_step
        self.every = every
        self.seconds = seconds
        self.enabled = enabled and logger.isEnabledFor(logging.INFO)
        self.start = self.last_time = time.monotonic()
        self.first_step_time: float | None = None
        self.last_step = start_step
        self.losses: list[float] = []
        self.examples = 0

    def plan(self) -> None:
        if not self.enabled:
            return
        trainer, config = self.trainer, self.trainer.config
        batches = math.ceil(trainer.n_examples / config.batch_size)
        shape = (f"{config.epochs:g} epochs" if not config.max_steps
                 else f"max_steps; {self.total * config.gradient_accumulation_steps / batches:.4g} epochs")
        per_step = (f", {config.gradient_accumulation_steps} per step" if config.gradient_accumulation_steps > 1
                    else "")
        logger.info("%s: %d steps (%s x %d batches of %d%s; %d examples)", trainer.description, self.total, shape,
                    batches, config.batch_size, per_step, trainer.n_examples)

    def update(self, step: int, loss: float, learning_rate: float, examples: int, dev: float | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        self.losses.append(loss)
        self.examples += examples
        done = step - self.start_step
        if done == 1:
            self.first_step_time = now
        if done == self.ESTIMATE_AFTER and self.total - step > 0:
            # from the steps after the first (which pays for warm-up allocations) where there are some
            per_step = ((now - self.first_step_time) / (done - 1) if self.first_step_time is not None and done > 1
                        else (now - self.start) / done)
            remaining = self.total - self.start_step
            logger.info("%s: estimate %s for %s%d steps (%.2f s per step; evaluations and checkpoints take extra)",
                        self.trainer.description, rough_duration(per_step * remaining),
                        "the remaining " if self.start_step else "", remaining, per_step)
        due = (done == 1 or step == self.total or dev is not None
               or (self.every is not None and step % self.every == 0)
               or (self.seconds is not None and now - self.last_time >= self.seconds))
        if not due:
            return
        elapsed = now - self.start
        rate = self.examples / max(now - self.last_time, 1e-9)
        eta = (self.total - step) * elapsed / max(done, 1)
        line = (f"{self.trainer.description}: step {step}/{self.total}  loss {sum(self.losses) / len(self.losses):.4f}"
                f"  lr {learning_rate:.3g}  {rate:.3g} examples/s  elapsed {format_duration(elapsed)}"
                f"  ETA {format_duration(eta)}")
        if dev is not None:
            line += f"  dev {dev:.4f}"
        logger.info("%s", line)
        self.last_time, self.last_step, self.losses, self.examples = now, step, [], 0
