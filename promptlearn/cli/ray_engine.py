"""``promptlearn classify --engine ray``: a saved classifier applied to a file by Ray Data workers.

Ray Data reads ``--input`` (CSV / TSV / JSON Lines / Parquet: a file, a folder of such files, or a URI such as
``s3://...`` that the workers can read), ``--workers`` actors each load ``--model-dir`` once
(:class:`promptlearn.integrations.ray.ClassifierPredictor`, one CPU each, ``--gpus-per-worker`` GPUs) and score
batches of rows in parallel, and the scored rows come back to this process in input order, where they are written
to ``--output`` as they come (:class:`promptlearn.io.streaming.TableWriter`: atomically, in the columns and format
of the local engine: ``label``, ``p(<class>)`` rounded to 6 decimals, then every input column).

The cluster is a local one started for the run and stopped after it, unless ``--address`` (or ``RAY_ADDRESS``) names
an existing one, or this process already has a Ray session (a notebook, a test), which is used as it is. On a
cluster, every node needs promptlearn installed and must see ``--model-dir`` and ``--input`` at the same paths.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import DataError, PromptlearnError
from .options import column_mapping, output_suffix

logger = logging.getLogger(__name__)

#: classify's options that select or configure the Ray engine (``None``: not given).
RAY_OPTIONS = {"workers": "--workers", "gpus_per_worker": "--gpus-per-worker", "address": "--address"}
#: classify's options the Ray engine does not take (a saved classifier's own demonstrations are used).
_LOCAL_ONLY = {"text": "--text", "resume": "--resume", "demos": "--demos", "demo_pool": "--demo-pool",
               "demo_selection": "--demo-selection", "demo_sets": "--demo-sets", "demo_encoder": "--demo-encoder",
               "chat_template": "--chat-template"}
_READ = ("csv", "tsv", "jsonl", "parquet")
#: rows handed to a worker at a time, in --batch-size forward passes: small enough that a few hundred rows
#: still spread over several workers, large enough that Ray's per-batch cost is small beside scoring.
BATCHES_PER_CALL = 4


def gpus_per_worker(value: str) -> float:
    """``--gpus-per-worker``: a number of GPUs >= 0 (a fraction shares one GPU between workers)."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of GPUs >= 0 (e.g. 1 or 0.5), got {value}")
    return number


def ray_requested(args: argparse.Namespace) -> bool:
    """Whether classify runs on Ray: ``--engine ray``, or one of its options (which the local engine refuses)."""
    return getattr(args, "engine", "local") == "ray" or any(getattr(args, n, None) is not None for n in RAY_OPTIONS)


def run_ray_classify(args: argparse.Namespace) -> int:
    """Score ``--input`` with ``--model-dir`` on ``--workers`` Ray actors and write ``--output`` in input order."""
    from ..integrations.ray import load_saved, require_ray

    _check_options(args)
    ray = require_ray("--engine ray")
    columns = column_mapping(args.column)
    input_format = _input_format(args.input, args.fmt)
    output_format = output_suffix(args.output)[1:]
    # Here, before any worker starts: the folder, the classes and the template are checked (a prompt loads its
    # model on first use, which the driver never makes; a distilled student or probe loads it here, on the CPU).
    classifier = load_saved(args.model_dir, model=_path_or_name(args.model), dtype=args.dtype,
                            calibrate=args.calibrate, device="cpu")
    classes = list(classifier.classes_)
    prefix = getattr(args, "prediction_prefix", "") or ""
    prediction_columns = [f"{prefix}label", *(f"{prefix}p({c})" for c in classes)]
    csv_header = _csv_header(args.input, input_format) if input_format in ("csv", "tsv") else None
    start = time.perf_counter()
    started = _start(ray, args)
    startup_seconds = time.perf_counter() - start
    restore = _configure_data(ray, args)
    try:
        ds = _read(ray, args.input, input_format, csv_header)
        header, schema = _schema(ds, csv_header)
        _check_columns(header, prediction_columns, columns, classifier, args.input)
        if getattr(args, "head", None) is not None:
            ds = ds.limit(args.head)
        scored = ds.map_batches(
            _predictor_class(), batch_format="pyarrow", batch_size=args.batch_size * BATCHES_PER_CALL,
            compute=ray.data.ActorPoolStrategy(size=args.workers or 1), num_cpus=1,
            num_gpus=args.gpus_per_worker or None,
            fn_constructor_kwargs=dict(model_dir=str(Path(args.model_dir).absolute()), model=_path_or_name(args.model),
                                       columns=columns, prediction_prefix=prefix, device=args.device,
                                       batch_size=args.batch_size, dtype=args.dtype, calibrate=args.calibrate))
        start = time.perf_counter()
        written = _write(scored, args.output, output_format, prediction_columns, header, schema)
        seconds = time.perf_counter() - start
    except Exception as exc:  # a user error raised in a worker comes back wrapped in Ray's exceptions
        error = _user_error(exc)
        if error is None:
            raise
        raise error from None
    finally:
        restore()  # this process's Ray Data settings as they were (a session it goes on using)
        if started:
            ray.shutdown()
    speed = f" ({written / seconds:.1f} ex/s)" if seconds > 0 and written else ""
    print(f"wrote {written} predictions to {args.output} (Ray started in {startup_seconds:.1f} s; scored {written} "
          f"examples in {seconds:.1f} s{speed} on {args.workers or 1} worker(s), the workers' model loading "
          f"included)", file=sys.stderr)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """One line for what the Ray engine cannot do, before anything is loaded."""
    if getattr(args, "engine", "local") != "ray":
        given = [flag for name, flag in RAY_OPTIONS.items() if getattr(args, name, None) is not None]
        raise PromptlearnError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --engine ray; add "
                               "--engine ray (or leave them out for the local engine)")
    missing = [flag for flag in ("--model-dir", "--input", "--output")
               if not getattr(args, flag[2:].replace("-", "_"), None)]
    if missing:
        raise PromptlearnError(f"--engine ray needs {', '.join(missing)}: a saved classifier (promptlearn train, "
                               f"save()) applied to a file, written to a file")
    local = [flag for name, flag in _LOCAL_ONLY.items() if getattr(args, name, None) not in (None, False, [], 0)]
    if local:
        raise PromptlearnError(f"{', '.join(local)} work with the local engine only; leave them out with --engine "
                               "ray (a saved classifier's own demonstrations are used)")
    if args.input == "-" or str(args.input).startswith("hf:"):
        raise PromptlearnError(f"--engine ray reads --input with Ray Data's readers: name a CSV / TSV / JSON Lines / "
                               f"Parquet file or folder, not {args.input}")


def _path_or_name(model: str | None) -> str | None:
    """``--model`` as the workers must see it: an existing local path made absolute (their working folder is not
    this one), a name as it is."""
    return str(Path(model).absolute()) if model and "://" not in model and Path(model).exists() else model


def _input_format(path: str, fmt: str | None) -> str:
    from ..io.tables import format_of

    found = format_of(path, fmt)
    if found not in _READ:
        raise DataError(f"--engine ray reads CSV, TSV, JSON Lines and Parquet, not {found} ({path}); convert it "
                        "(e.g. promptlearn sample ... --output data.jsonl) or use the local engine")
    if "://" not in str(path) and not Path(path).exists():
        raise DataError(f"data file not found: {path}")
    return found


def _csv_header(path: str, fmt: str) -> list[str]:
    """The column names of a CSV / TSV input (of its first file, for a folder): read here, so that the workers
    read every column as text, as the local engine does (Arrow's type inference would turn 007 into 7 and NA
    into a null)."""
    import pyarrow.csv as pcsv
    import pyarrow.fs as pafs

    if "://" in str(path):
        filesystem, where = pafs.FileSystem.from_uri(str(path))
    else:
        filesystem, where = pafs.LocalFileSystem(), str(Path(path).absolute())
    if filesystem.get_file_info(where).type == pafs.FileType.Directory:
        files = sorted(info.path for info in filesystem.get_file_info(pafs.FileSelector(where, recursive=True))
                       if info.type == pafs.FileType.File and not Path(info.path).name.startswith((".", "_")))
        if not files:
            raise DataError(f"{path} is a folder without files")
        where = files[0]
    try:
        with filesystem.open_input_stream(where) as stream:
            return list(pcsv.open_csv(stream, parse_options=_parse_options(fmt)).schema.names)
    except Exception as exc:  # pyarrow's own error types
        raise DataError(f"{where}: cannot read its header as {fmt.upper()} ({str(exc).splitlines()[0]})") from None


def _parse_options(fmt: str) -> Any:
    import pyarrow.csv as pcsv

    return pcsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")


def _start(ray: Any, args: argparse.Namespace) -> bool:
    """Join the cluster at --address (or RAY_ADDRESS), else start a local one; True when this run must stop it."""
    if ray.is_initialized():  # this process's session (a notebook, a test): used as it is
        return False
    verbose = getattr(args, "verbose", 0) > 0
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose,
                               "logging_level": logging.INFO if verbose else logging.ERROR}
    if args.address:
        options["address"] = args.address
    try:
        ray.init(**options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {args.address}" if args.address else "a local Ray cluster"
        raise PromptlearnError(f"cannot start or join {where} ({str(exc).splitlines()[0]}); check --address "
                               "(e.g. ray://head:10001, or auto on a node of the cluster)") from None
    return True


def _configure_data(ray: Any, args: argparse.Namespace) -> Any:
    """Ray Data for this run: rows in input order, a progress bar on a terminal only, a worker's own exception
    raised as it is (not wrapped), and its log lines only with -v; returns what puts the settings back.

    Parquet is read by Ray Data's first reader (``use_datasource_v2 = False``): the newer one (Ray 2.5x) lists the
    files in tasks of one CPU that ``num_cpus=0`` does not reach, and these wait for ever when the workers hold
    every CPU (``--workers 2`` on 2 CPUs)."""
    from ..models.distributed import show_progress

    context = ray.data.DataContext.get_current()
    options = context.execution_options
    log = logging.getLogger("ray.data")
    settings = [(options, "preserve_order", True),
                (context, "enable_progress_bars", show_progress(False if getattr(args, "quiet", False) else None)),
                (context, "raise_original_map_exception", True), (context, "use_datasource_v2", False)]
    settings = [(target, name, value, getattr(target, name)) for target, name, value in settings
                if hasattr(target, name)]
    level = log.level
    for target, name, value, _ in settings:
        setattr(target, name, value)
    if not getattr(args, "verbose", 0):
        log.setLevel(logging.CRITICAL)

    def restore() -> None:
        for target, name, _, before in settings:
            setattr(target, name, before)
        log.setLevel(level)

    return restore


def _read(ray: Any, path: str, fmt: str, csv_header: list[str] | None) -> Any:
    """The input as a Ray Dataset. Reading takes no CPU slot: the workers hold theirs for the whole run, and a
    read waiting for a free CPU would wait for ever on a cluster whose CPUs are all workers."""
    source = str(path) if "://" in str(path) else str(Path(path).absolute())
    if fmt == "parquet":
        return ray.data.read_parquet(source, num_cpus=0, file_extensions=None)
    if fmt == "jsonl":
        return ray.data.read_json(source, lines=True, num_cpus=0, file_extensions=None)
    import pyarrow as pa
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(column_types={name: pa.string() for name in csv_header or []},
                                  strings_can_be_null=False, quoted_strings_can_be_null=False)
    return ray.data.read_csv(source, parse_options=_parse_options(fmt), convert_options=convert, num_cpus=0,
                             file_extensions=None)


def _schema(ds: Any, csv_header: list[str] | None) -> tuple[list[str], Any]:
    """The input's columns and Arrow schema (every column text for CSV / TSV)."""
    import pyarrow as pa

    if csv_header is not None:
        return csv_header, pa.schema([pa.field(name, pa.string()) for name in csv_header])
    schema = ds.schema()
    if schema is None:  # no rows
        return [], pa.schema([])
    arrow = getattr(schema, "base_schema", None)
    return list(schema.names), arrow if isinstance(arrow, pa.Schema) else None


def _check_columns(header: list[str], prediction_columns: list[str], columns: dict[str, str] | None,
                   classifier: Any, where: str) -> None:
    taken = sorted(set(header) & set(prediction_columns))
    if taken:
        raise PromptlearnError(
            f"the input already has column(s) {taken}, where classify would write its predictions; keep both with "
            f"--prediction-prefix (e.g. --prediction-prefix predicted_ writes predicted_label, predicted_p(...)) "
            f"or rename those columns")
    if columns:
        missing = [column for column in columns.values() if column not in header]
        if missing:
            raise DataError(f"{where} has no column(s) {missing}; columns: {', '.join(header)}")
    template = getattr(classifier, "template_", None)  # a prompt's: its fields must be there
    fields = set(columns or header)
    unfilled = sorted(set(template.fields) - fields) if template is not None else []
    if unfilled and header:
        raise DataError(f"{where} has no column for the template's field(s) {unfilled} (columns: "
                        f"{', '.join(header)}); map them with --column FIELD=COLUMN")


def _predictor_class() -> type:
    from ..integrations.ray import ClassifierPredictor

    return ClassifierPredictor


def _write(scored: Any, output: str, fmt: str, prediction_columns: list[str], header: list[str],
           schema: Any) -> int:
    """Write the scored rows as they come back, in input order: the prediction columns (probabilities rounded to
    6 decimals, as the local engine writes them), then the input's; the number of rows written."""
    from ..io.streaming import TableWriter

    label, probabilities = prediction_columns[0], prediction_columns[1:]
    out_schema = None
    if fmt == "parquet" and schema is not None:  # the input's column types kept, as the local engine does
        import pyarrow as pa

        out_schema = pa.schema([pa.field(label, pa.string()), *(pa.field(c, pa.float64()) for c in probabilities),
                                *schema])
    with TableWriter(output, [*prediction_columns, *header], fmt, schema=out_schema) as writer:
        for batch in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            records = []
            for row in batch.to_pylist():
                record = {label: row[label], **{c: round(float(row[c]), 6) for c in probabilities}}
                record.update((name, row[name]) for name in header)
                records.append(record)
            writer.write(records)
        return writer.rows


_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$")


def _user_error(exc: BaseException) -> PromptlearnError | None:
    """The one-line error a Ray worker raised for the user to fix (a :class:`PromptlearnError`), found in the
    exceptions Ray wraps it in; None for anything else (a real failure, shown with its traceback)."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, PromptlearnError):
            cause = getattr(error, "cause", None)  # Ray's RayTaskError(<the user's error class>): the error itself
            # its message's first line: Ray appends its own lines (retries) to the one line of a promptlearn error
            message = str(cause if isinstance(cause, PromptlearnError) else error).strip().splitlines()
            return PromptlearnError(message[0] if message else type(error).__name__)
        pending += [getattr(error, "cause", None), error.__cause__, error.__context__]
    text = getattr(exc, "error_msg", "") or ""  # an actor that died in __init__ (loading the classifier)
    if "promptlearn" in text:
        lines = [m.group(2) for m in map(_ERROR_LINE.match, text.splitlines()) if m]
        if lines:
            return PromptlearnError(f"a Ray worker could not load the classifier: {lines[-1]}")
    return None
