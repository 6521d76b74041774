"""Several processes (``accelerate launch``, ``torchrun``): one process per GPU, or gloo between CPU processes.

What promptlearn needs from the process group: who this process is (its index, how many there are, and whether it
is the main process: the one that saves, logs, prints and shows progress), a barrier, gradient averaging, and
:func:`gather_rows`, which scores a list in one contiguous slice per process and gives every process all the rows
back in input order.

With one process, the usual case, nothing here imports accelerate or touches ``torch.distributed``. A launched run
(``WORLD_SIZE`` > 1, or an MPI launcher's size) sets the process group up on first use, through accelerate's
``PartialState``: NCCL and one GPU per process where CUDA is visible, gloo on CPUs (or with
``ACCELERATE_USE_CPU=1``). A process group the caller has set up already is used as it is.
"""

from __future__ import annotations

import atexit

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place among the processes of a run (``process_index`` 0 is the main process)."""

    process_index: int = 0
    num_processes: int = 1

    @property
    def is_main_process(self) -> bool:
        return self.process_index == 0


def launched_size() -> int:
    """How many processes the launcher says the run has (1 when not launched, or launched with one)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to 1 / true / yes / on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _group() -> Any:
    """``torch.distributed`` when this process is one of several (setting the group up if launched), else None."""
    import torch.distributed as dist

    if not dist.is_available():
        return None
    if not dist.is_initialized():
        if launched_size() == 1:
            return None
        _initialize()
    return dist if dist.is_initialized() and dist.get_world_size() > 1 else None


def _initialize() -> None:
    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    cpu = env_flag("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    # accelerate's PartialState only picks gloo for CPU processes when told cpu=True; without it, CPU processes
    # started by torchrun (`accelerate launch --multi_gpu` on a machine without GPUs) would each think they run alone.
    PartialState(cpu=cpu)
    if not dist.is_initialized():  # a PartialState made earlier, before the launch variables were read
        dist.init_process_group(backend="gloo" if cpu else "nccl")
    # Left to interpreter teardown, the group's communication threads can be destroyed still joinable, which
    # aborts a process that has finished its work ("terminate called without an active exception").
    atexit.register(_leave_group)
    logger.debug("process %d of %d (%s)", dist.get_rank(), dist.get_world_size(), dist.get_backend())


def _leave_group() -> None:
    """Destroy the process group this module joined, at exit (once: a group already destroyed is left alone)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def setup() -> ProcessInfo:
    """Join the process group if this process was launched as one of several; this process's :class:`ProcessInfo`.

    Also warns when ``accelerate launch --cpu --num_processes N`` started a single process: accelerate starts
    several CPU processes only through MPI (``--mpirun_hostfile``)."""
    if (launched_size() == 1 and env_flag("ACCELERATE_USE_CPU") and os.environ.get("MASTER_PORT")
            and "LOCAL_RANK" not in os.environ):
        logger.warning("accelerate launch --cpu started one process: accelerate runs several CPU processes only "
                       "through MPI (--mpirun_hostfile). For several CPU processes (gloo) use `accelerate launch "
                       "--multi_gpu --num_processes N` with CUDA_VISIBLE_DEVICES= or `torchrun --nproc_per_node N`; "
                       "see the README")
    return state()


def state() -> ProcessInfo:
    """This process's index and the number of processes (0 of 1 when not distributed)."""
    group = _group()
    if group is None:
        return ProcessInfo()
    return ProcessInfo(group.get_rank(), group.get_world_size())


def is_main_process() -> bool:
    """Whether this process saves, logs, prints and shows progress (always true with one process)."""
    return state().is_main_process


def show_progress(flag: bool | None) -> bool:
    """The progress policy, in one place: ``flag`` when given, else whether stderr is a terminal; never on a
    process other than the main one (several processes show one bar, the main process's share)."""
    import sys

    show = flag if flag is not None else sys.stderr.isatty()
    return bool(show) and is_main_process()


def barrier() -> None:
    """Wait for every process (nothing with one)."""
    group = _group()
    if group is not None:
        group.barrier()


def all_reduce_mean_(tensors: Iterable[Any]) -> None:
    """Average ``tensors`` (gradients) over the processes, in place: one collective per dtype and device."""
    group = _group()
    if group is None:
        return
    import torch

    buckets: dict[tuple[Any, Any], list[Any]] = {}
    for tensor in tensors:
        buckets.setdefault((tensor.dtype, tensor.device), []).append(tensor)
    size = group.get_world_size()
    for bucket in buckets.values():
        flat = torch.cat([t.reshape(-1) for t in bucket])
        group.all_reduce(flat, op=group.ReduceOp.SUM)
        flat /= size
        offset = 0
        for tensor in bucket:
            tensor.copy_(flat[offset:offset + tensor.numel()].view_as(tensor))
            offset += tensor.numel()


def all_reduce_sum(value: Any) -> Any:
    """The sum of a scalar tensor over the processes (the tensor itself with one process)."""
    group = _group()
    if group is None:
        return value
    total = value.detach().clone().reshape(1)
    group.all_reduce(total, op=group.ReduceOp.SUM)
    return total[0]


def gather_rows(n: int, score: Callable[[slice], np.ndarray]) -> np.ndarray:
    """``score(slice(0, n))``, computed in slices: each process scores one contiguous part of the ``n`` rows and
    every process gets all the rows back in input order. Every process must call it with the same ``n``.

    An error in one process's part is raised in every process (none is left waiting for the others)."""
    group = _group()
    if group is None:
        return score(slice(0, n))
    rank, size = group.get_rank(), group.get_world_size()
    part: Any
    try:
        part = score(slice(rank * n // size, (rank + 1) * n // size))
    except Exception as exc:  # noqa: BLE001 - handed to every process below
        part = _Failure(exc)
    parts: list[Any] = [None] * size
    group.all_gather_object(parts, part)
    failure = next((p for p in parts if isinstance(p, _Failure)), None)
    if failure is not None:
        if isinstance(part, _Failure):
            raise part.error
        raise failure.error
    rows = [p for p in parts if len(p)]
    return np.concatenate(rows, axis=0) if rows else parts[0]


class _Failure:
    """An exception raised while scoring one process's part, as sent to the others."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        try:  # the exception itself where it pickles (promptlearn's errors do), else its type name and message
            import pickle

            pickle.dumps(self.error)
            return (_Failure, (self.error,))
        except Exception:  # noqa: BLE001
            return (_Failure, (RuntimeError(f"{type(self.error).__name__}: {self.error}"),))
