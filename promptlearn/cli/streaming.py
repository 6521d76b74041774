"""How ``classify`` and ``evaluate`` write their per-example rows for inputs of any size: chunk by chunk, to stdout
as they come or to a file through resumable parts (:class:`promptlearn.io.streaming.PartsFolder`), with a
progress bar (rows/s and ETA) on a terminal.

A file output's manifest holds the arguments that change the output (the model, prompt, scoring and data options,
the chunk bounds), the contents' SHA-256 of a template / verbalizer / demonstration file named by path, and the
input's size and SHA-256; ``--resume`` reuses the finished parts only when all of these are the same. Under several
processes every process reads every chunk and scores its slice; the main process alone writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import PromptlearnError

#: The options whose values change the rows written (a resume with others is refused).
OUTPUT_OPTIONS = ("model", "model_dir", "gguf_file", "template", "verbalizer", "shorten", "calibrate", "multi_token",
                  "after_mask", "aggregation", "batch_size", "max_length", "device", "dtype", "demos", "demo_pool",
                  "demo_selection", "demo_encoder", "demo_sets", "chat_template", "column", "fmt", "head",
                  "prediction_prefix", "chunk_rows", "chunk_bytes", "text", "input", "data", "split",
                  "label_column", "label_map")
_FLAG_OF = {"fmt": "format", "model_dir": "model-dir"}


def manifest(args: argparse.Namespace, command: str, output_format: str) -> dict[str, Any]:
    """What a file output's parts were made by: ``--flag: value`` for :data:`OUTPUT_OPTIONS`, the contents of the
    prompt's files, and ``input``, the input's identity (size and SHA-256; the texts' digest for ``--text``)."""
    from ..io.streaming import file_identity

    found: dict[str, Any] = {"command": command, "output format": output_format}
    for name in OUTPUT_OPTIONS:
        if hasattr(args, name) and name not in ("text", "input", "data"):
            found[f"--{_FLAG_OF.get(name, name.replace('_', '-'))}"] = getattr(args, name)
    for name in ("template", "verbalizer", "demo_pool"):
        value = getattr(args, name, None)
        if isinstance(value, str) and Path(value).is_file():
            found[f"--{name.replace('_', '-')} contents"] = file_identity(value)["sha256"]
    source = getattr(args, "input", None) or getattr(args, "data", None)
    if getattr(args, "text", None):
        found["input"] = {"texts": hashlib.sha256(json.dumps(args.text).encode()).hexdigest()}
    elif source and source != "-" and Path(source).is_file():
        found["input"] = {"path": str(source), **file_identity(source)}
    else:
        found["input"] = {"path": str(source)}
    return found


class ChunkedOutput:
    """The per-example rows of a run, written chunk by chunk: to stdout (``output`` None) as they come, or to
    ``output`` through its parts folder, assembled at :meth:`finish`; nowhere when ``fmt`` is None. ``resume``
    reuses finished parts."""

    def __init__(self, output: str | None, fmt: str | None, run_manifest: dict[str, Any], *, resume: bool,
                 main_process: bool) -> None:
        from ..io.streaming import PartsFolder

        self.output, self.fmt, self.main = output, fmt, main_process
        self.parts = PartsFolder(output, fmt.lstrip(".")) if output and fmt else None
        self.manifest, self.resume = run_manifest, resume
        self.done: list[dict[str, Any]] = []
        self.schema: Any = None
        self._stdout: Any = None
        self.written = 0

    def start(self, header: Sequence[str], schema: Any = None) -> list[dict[str, Any]]:
        """Open the parts folder (main process), then, in every process, the records of the parts already
        finished (a resume: their chunks are read but not scored)."""
        self.header, self.schema = list(header), schema
        if self.parts is None:
            return []
        from ..models.distributed import barrier

        if self.main:
            self.parts.open(self.manifest, resume=self.resume)
        barrier()  # the folder is set up before any process looks at it
        self.done = self.parts.finished()
        if self.done and self.fmt == ".parquet" and self.schema is None:
            from ..io.tables import _pyarrow

            self.schema = _pyarrow(str(self.output), "reading").parquet.read_schema(str(self.parts.part(0)))
        return self.done

    def write(self, index: int, records: list[dict[str, Any]], kept: dict[str, Any]) -> None:
        """Chunk ``index``'s rows (main process only), with ``kept`` in its part's record."""
        if not self.main or self.fmt is None:
            return
        self.written += len(records)
        if self.parts is None:
            if self._stdout is None:
                from ..io.streaming import TableWriter

                self._stdout = TableWriter("-", self.header, self.fmt.lstrip(".")).__enter__()
            self._stdout.write(records)
            return
        self.schema = self.parts.write(index, self.header, records, kept, schema=self.schema)

    def finish(self, chunks: int) -> int:
        """Assemble the output from its ``chunks`` parts (main process); returns the rows written."""
        if not self.main or self.fmt is None:
            return 0
        if self.parts is None:
            if self._stdout is None:  # no chunk at all: the header alone
                self.write(0, [], {})
            self._stdout.__exit__(None, None, None)
            return self.written
        return self.parts.assemble(self.header, chunks)

    def abort(self) -> None:
        """After an error: the parts folder is removed when it holds no finished part (nothing to lose)."""
        if self.main and self.parts is not None and not self.parts.finished() and self.parts.folder.is_dir():
            self.parts.remove()


class Progress:
    """A progress bar over the rows (rows/s, and an ETA from how far into the input the rows read reach), on a
    terminal only (:func:`promptlearn.models.distributed.show_progress`)."""

    def __init__(self, flag: bool | None) -> None:
        from ..models.distributed import show_progress

        self.bar: Any = None
        if show_progress(flag):
            from tqdm.auto import tqdm

            self.bar = tqdm(unit="rows", dynamic_ncols=True, smoothing=0.1, leave=False)
        self.rows = 0

    def update(self, chunk: Any) -> None:
        if self.bar is None:
            return
        self.rows += len(chunk)
        if chunk.total and chunk.position:
            self.bar.total = max(self.rows, round(self.rows * chunk.total / chunk.position))
        self.bar.update(len(chunk))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def check_resume(args: argparse.Namespace) -> None:
    """``--resume`` needs a file output and an input that can be read again (not stdin)."""
    if not getattr(args, "resume", False):
        return
    if not args.output:
        raise PromptlearnError("--resume continues a run that writes a file: give the same --output")
    if (getattr(args, "input", None) or getattr(args, "data", None)) == "-":
        raise PromptlearnError("--resume cannot read stdin again: give the input with --input FILE")


def elapsed(start: float) -> float:
    return time.perf_counter() - start


@dataclass
class Scored:
    """What a run over chunks keeps: each variant's predicted class indices (all rows, in order), the primary
    variant, the content-free prior, the seconds spent scoring, the rows scored and the rows of resumed parts."""

    predicted: dict[str, Any] = field(default_factory=dict)
    primary: str = "raw"
    prior: Any = None
    seconds: float = 0.0
    scored: int = 0
    resumed: int = 0
    written: int = 0


def score_chunks(chunks: Iterable[Any], score: Callable[[list[dict[str, Any]]], tuple[str, dict[str, Any], Any]],
                 records: Callable[[Any, dict[str, Any], str], list[dict[str, Any]]], output: ChunkedOutput,
                 progress: Progress, header: Sequence[str], schema: Any = None) -> Scored:
    """Score ``chunks`` in turn (``score(examples)`` gives ``(primary, {variant: (indices, probabilities)},
    prior)``), write ``records(chunk, variants, primary)`` of each to ``output`` as it comes, and assemble the
    output at the end. The chunks of parts finished by an interrupted run (``output.start``) are read past,
    not scored: their predicted classes come from their parts' records."""
    import numpy as np

    run = Scored()
    predicted: dict[str, list[Any]] = {}
    index = 0
    try:
        done = output.start(header, schema)
        for index, chunk in enumerate(chunks):
            if index < len(done):
                for name, values in done[index]["predicted"].items():
                    predicted.setdefault(name, []).append(np.asarray(values, dtype=int))
                run.resumed += len(chunk)
                progress.update(chunk)
                continue
            variants: dict[str, Any] = {}
            if len(chunk):
                start = time.perf_counter()
                run.primary, variants, prior = score(chunk.examples)
                run.prior = prior if prior is not None else run.prior
                run.seconds += time.perf_counter() - start
            run.scored += len(chunk)
            for name, (indices, _) in variants.items():
                predicted.setdefault(name, []).append(np.asarray(indices, dtype=int))
            output.write(index, records(chunk, variants, run.primary),
                         {"predicted": {name: np.asarray(indices).tolist() for name, (indices, _) in variants.items()}})
            progress.update(chunk)
        run.written = output.finish(index + 1)
    except BaseException:
        output.abort()
        raise
    finally:
        progress.close()
    run.predicted = {name: np.concatenate(parts) for name, parts in predicted.items()}
    return run


@dataclass
class LabelledData:
    """evaluate's data: every label (as text, in order), the example fields, how many examples the data holds
    (``available``; fewer are scored with ``--limit``: ``subset``), and :meth:`chunks`, the examples in chunks
    whose rows hold each example's label under the label column."""

    labels: list[str]
    fields: list[str]
    available: int
    subset: bool
    chunks: Callable[[], Iterator[Any]]


def _streamable(args: argparse.Namespace) -> bool:
    """Whether evaluate reads ``--data`` in chunks: a CSV / TSV / JSON Lines / Parquet file, no --limit."""
    from ..core.errors import DataError
    from ..io.tables import format_of

    data = str(args.data)
    path = Path(data).expanduser()
    if args.limit or data == "-" or data.startswith("hf:") or not path.is_file() \
            or path.parent.name in ("nli", "ag_news"):  # the shared data's own readers (io/tasks.py)
        return False
    try:
        return format_of(path, args.fmt) in ("csv", "tsv", "jsonl", "parquet")
    except DataError:
        return False


def labelled_chunks(args: argparse.Namespace, columns: dict[str, str] | None, label_column: str) -> LabelledData:
    """The labelled examples of ``--data`` for evaluate: a data file read in chunks (its labels in a first pass),
    anything else read whole (``--limit``: a seeded subset) and cut into the same chunks."""
    from ..io.streaming import Chunk, iter_chunks
    from ..io.tables import to_text

    bounds = {"max_rows": args.chunk_rows, "max_bytes": args.chunk_bytes}
    if _streamable(args):
        labels: list[str] = []
        header: list[str] = []
        for chunk in iter_chunks(args.data, fmt=args.fmt, **bounds):
            header = chunk.header
            if label_column not in header:
                raise PromptlearnError(f"{args.data} has no label column {label_column!r}; columns: "
                                       f"{', '.join(header)}; pass --label-column")
            missing = next((chunk.start + i + 1 for i, r in enumerate(chunk.rows) if label_column not in r), None)
            if missing is not None:
                raise PromptlearnError(f"{args.data}, row {missing}: no {label_column!r} value")
            labels.extend(to_text(r[label_column]) for r in chunk.rows)
        if not labels:
            raise PromptlearnError(f"{args.data} has no examples to evaluate")

        def chunks() -> Iterator[Any]:
            for chunk in iter_chunks(args.data, fmt=args.fmt, columns=columns, **bounds):
                examples = chunk.examples if columns else [{k: v for k, v in e.items() if k != label_column}
                                                           for e in chunk.examples]
                rows = [{label_column: to_text(r[label_column])} for r in chunk.rows]
                yield Chunk(chunk.index, chunk.start, examples, rows, chunk.header, chunk.position, chunk.total)

        fields = list(columns) if columns else [h for h in header if h != label_column]
        return LabelledData(labels, fields, len(labels), False, chunks)
    from ..io.readers import load_data
    from ..io.sampling import subsample

    examples, given = load_data(args.data, args.split, columns=columns, label_column=args.label_column, fmt=args.fmt)
    if given is None:
        raise PromptlearnError(f"{args.data} has no labels (looked for column {args.label_column!r}); "
                               "pass --label-column")
    if not examples:
        raise PromptlearnError(f"{args.data} has no examples to evaluate")
    available = len(examples)
    subset = bool(args.limit) and args.limit < available
    if subset:
        examples, given = subsample(examples, given, args.limit, args.seed)
    labels = [to_text(y) for y in given]

    def listed() -> Iterator[Any]:
        size = args.chunk_rows
        for index, start in enumerate(range(0, len(examples), size)):
            rows = [{label_column: y} for y in labels[start:start + size]]
            yield Chunk(index, start, examples[start:start + size], rows, [], start + len(rows), len(examples))

    return LabelledData(labels, list(dict.fromkeys(k for e in examples for k in e)), available, subset, listed)
