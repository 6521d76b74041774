"""Tables too large for memory: read in bounded chunks, written as they come, and kept as parts for a resume.

- :func:`iter_chunks` reads a CSV / TSV / JSON Lines / Parquet file (or stdin, ``-``) in :class:`Chunk` s bounded in
  rows *and* bytes (rows can be wide), each carrying the examples (the template's fields, as text), the rows as
  read and the input's header. CSV / TSV / JSON Lines are read line by line; Parquet through
  ``ParquetFile.iter_batches`` with a batch size computed from the bytes bound (pyarrow still decodes a whole row
  group's column chunks at a time: a file written as one huge row group costs that row group's size in memory).
  A ``.json`` document, a Hugging Face dataset and a text stream without bytes are read whole, then chunked.
- :class:`TableWriter` writes CSV / TSV / JSON Lines / Parquet (pyarrow's ``ParquetWriter``) as records come, to a
  temporary file beside the target that is renamed into place on a clean exit (removed on an error); ``-`` is
  stdout.
- :class:`PartsFolder` keeps a long run's output as numbered parts (each written atomically, with a small record of
  its predictions) and a manifest in ``.<output name>.parts/`` beside the output, so that a killed run can be
  resumed; the output is assembled from the parts at the end and the folder removed.

Chunk boundaries depend only on the input and the bounds, so a resumed run scores the same chunks as an
uninterrupted one. This module imports neither torch nor transformers (pyarrow only for Parquet).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import atomic_write_text, current_umask
from .tables import _json_default, _pyarrow, _sniff, check_header, format_of, to_text
from ..core.errors import DataError, PromptlearnError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ROWS", "Chunk", "PartsFolder", "TableWriter", "file_identity",
           "iter_chunks"]

#: Default bounds of one chunk: rows, and bytes of input (whichever is reached first).
DEFAULT_MAX_ROWS = 1024
DEFAULT_MAX_BYTES = 4 << 20

_WRITTEN = ("csv", "tsv", "jsonl", "parquet")
_SAMPLE_BYTES = 1 << 20  # what decides a TSV's quoting (CSV-style or literal)


@dataclass
class Chunk:
    """Consecutive rows of an input: ``index`` (0, 1, ...), ``start`` (the first row's position from 0), the
    ``examples`` (template fields as text), the ``rows`` as read and the input's ``header``; ``position`` is how
    far into the input it ends, out of ``total`` (characters or bytes of a text file, rows of a Parquet file or a
    table read whole; None: unknown, stdin), for progress; ``schema`` a Parquet input's Arrow schema, else None."""

    index: int
    start: int
    examples: list[dict[str, str]]
    rows: list[dict[str, Any]]
    header: list[str]
    position: int = 0
    total: int | None = None
    schema: Any = None

    def __len__(self) -> int:
        return len(self.rows)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def iter_chunks(path: str | os.PathLike, *, fmt: str | None = None, columns: Mapping[str, str] | None = None,
                max_rows: int = DEFAULT_MAX_ROWS, max_bytes: int = DEFAULT_MAX_BYTES,
                head: int | None = None) -> Iterator[Chunk]:
    """The chunks of the table at ``path`` (``-``: stdin), in order; at least one (an input without rows gives one
    empty chunk with the header). ``columns`` maps template fields to columns (``{"text": "review"}``; every
    column is a field of its name without it); ``head`` keeps the first rows only (default: the CLI's ``--head``,
    :func:`promptlearn.io.readers.head_rows`)."""
    from .readers import _head

    if max_rows < 1 or max_bytes < 1:
        raise PromptlearnError(f"chunks need at least one row and one byte, got {max_rows} rows, {max_bytes} bytes")
    head = _head(head)
    rows = _rows(path, fmt, max_rows, max_bytes)
    header, schema, total = next(rows)
    if columns:
        missing = [c for c in columns.values() if c not in header]
        if missing:
            where = "<stdin>" if str(path) == "-" else str(path)
            raise DataError(f"{where} has no column(s) {missing}; columns: {', '.join(header)}")
    index = start = 0
    batch: list[dict[str, Any]] = []
    size = previous = 0
    for row, row_bytes, position in rows:
        if head is not None and start + len(batch) >= head:
            break
        if batch and (len(batch) >= max_rows or size + row_bytes > max_bytes):
            yield _chunk(index, start, batch, header, columns, previous, total, schema)
            index, start, batch, size = index + 1, start + len(batch), [], 0
        batch.append(row)
        size += row_bytes
        previous = position
    if batch or index == 0:
        yield _chunk(index, start, batch, header, columns, previous, total, schema)


def _chunk(index: int, start: int, rows: list[dict[str, Any]], header: list[str], columns: Mapping[str, str] | None,
           position: int, total: int | None, schema: Any) -> Chunk:
    if columns:
        examples = [{field: to_text(row[col]) for field, col in columns.items() if col in row} for row in rows]
    else:
        examples = [{k: to_text(v) for k, v in row.items()} for row in rows]
    return Chunk(index, start, examples, rows, header, position, total, schema)


def _rows(path: str | os.PathLike, fmt: str | None, max_rows: int, max_bytes: int) -> Iterator[Any]:
    """First ``(header, Arrow schema or None, the input's extent or None)``, then ``(row, its size in bytes,
    position)`` for every row."""
    stdin = str(path) == "-"
    where = "<stdin>" if stdin else str(path)
    if fmt is not None:
        fmt = format_of(where, fmt)
    if stdin:
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is not None and fmt is None and hasattr(buffer, "peek"):
            fmt = _sniff(buffer.peek(_SAMPLE_BYTES))[0]
        if buffer is None or fmt not in ("csv", "tsv", "jsonl"):
            yield from _whole(path, fmt)
            return
        sample = buffer.peek(_SAMPLE_BYTES) if hasattr(buffer, "peek") else b""
        stream = buffer
    else:
        p = Path(path)
        if str(path).startswith("hf:") or p.is_dir():
            yield from _whole(path, fmt)
            return
        if fmt is None:
            fmt = format_of(p)
        if fmt not in ("csv", "tsv", "jsonl", "parquet"):
            yield from _whole(path, fmt)
            return
        try:
            stream = open(p, "rb")
        except FileNotFoundError:
            raise DataError(f"data file not found: {p}") from None
        except OSError as exc:
            raise DataError(f"cannot read {p}: {exc.strerror or exc}") from None
        sample = stream.read(4)
        if sample == b"PAR1" and fmt != "parquet":
            stream.close()
            yield from _whole(path, fmt)  # the whole-file reader's message names the suffix and the fix
            return
        stream.seek(0)
        sample = stream.read(_SAMPLE_BYTES) if fmt == "tsv" else b""
        stream.seek(0)
    try:
        if fmt == "parquet":
            yield from _parquet_rows(stream, where, max_rows, max_bytes)
        elif fmt == "jsonl":
            yield from _jsonl_rows(stream, where, scan=not stdin)
        else:
            yield from _delimited_rows(stream, where, fmt, sample)
    finally:
        if not stdin:
            stream.close()


def _whole(path: str | os.PathLike, fmt: str | None) -> Iterator[Any]:
    """A table read whole (a JSON document, a dataset, a text stream), given row by row."""
    from .readers import open_table

    table = open_table(path, None, fmt)
    yield table.header, None, len(table)
    for n, row in enumerate(table.rows, start=1):
        yield row, 0, n


def _text_lines(stream: Any, where: str, counter: list[int]) -> Iterator[str]:
    """The lines of a binary stream as UTF-8 text (a leading BOM dropped), counting their characters."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        for line in text:
            counter[0] += len(line)
            yield line
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text ({exc}); re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                        ) from None
    finally:
        text.detach()


def _tsv_quoted(sample: bytes) -> bool:
    """Whether a TSV quotes CSV-style (quotes doubled inside quoted fields) or holds quotes literally (GLUE), told
    from its first lines as :func:`promptlearn.io.tables.read_file` tells it from the whole file."""
    text = sample.decode("utf-8-sig", errors="replace")
    if len(sample) >= _SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    if '"' not in text:
        return True

    def parse(quoted: bool) -> list[list[str]] | None:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=quoted,
                            quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)
        try:
            return [r for r in reader if r]
        except csv.Error:
            return None

    quoted, literal = parse(True), parse(False)
    def consistent(rows: list[list[str]] | None) -> bool:
        return bool(rows) and all(len(r) == len(rows[0]) for r in rows or [])

    ok_quoted = consistent(quoted) and not any("\n" in f or "\r" in f for r in quoted or [] for f in r)
    if ok_quoted and consistent(literal) and quoted != literal:
        return all(len(f) >= 2 and f[0] == '"' and f[-1] == '"' for r in literal or [] for f in r if '"' in f)
    return ok_quoted or not consistent(literal)


def _delimited_rows(stream: Any, where: str, fmt: str, sample: bytes) -> Iterator[Any]:
    counter = [0]
    quoted = fmt == "csv" or _tsv_quoted(sample)
    reader = csv.reader(_text_lines(stream, where, counter), delimiter="\t" if fmt == "tsv" else ",", strict=quoted,
                        quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)
    name = "CSV" if fmt == "csv" else "TSV"
    try:
        header = next((r for r in reader if r), None)
    except csv.Error as exc:
        raise DataError(f"{where}, line {reader.line_num}: malformed {name} ({exc})") from None
    if header is None:
        raise DataError(f"{where} is empty; CSV/TSV files need a header row")
    check_header(header, fmt, where, name)
    yield header, None, _size(stream)
    width, before = len(header), counter[0]
    try:
        for values in reader:
            if not values:
                continue
            if len(values) != width:
                raise DataError(f"{where}, line {reader.line_num}: {len(values)} columns, but the header has {width}")
            yield dict(zip(header, values)), counter[0] - before, counter[0]
            before = counter[0]
    except csv.Error as exc:
        raise DataError(f"{where}, line {reader.line_num}: malformed {name} ({exc})") from None


def _json_line(line: bytes, n: int, where: str) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line.decode("utf-8-sig" if n == 1 else "utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text ({exc}); re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}, line {n}: bad JSON ({exc.msg} at column {exc.colno}); read as JSON Lines, one "
                        "JSON object per line (a JSON array or object of records should be named .json)") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}, line {n}: expected a JSON object, got {type(record).__name__}")
    return record


def _jsonl_rows(stream: Any, where: str, *, scan: bool) -> Iterator[Any]:
    """JSON Lines; ``scan`` first reads every line for the header (each key, in order of first appearance), so
    that a key only late lines have is a column from the start (stdin: the keys of the lines read so far)."""
    header: dict[str, None] = {}
    if scan:
        for n, line in enumerate(stream, start=1):
            record = _json_line(line, n, where)
            if record is not None:
                header.update(dict.fromkeys(record))
        stream.seek(0)
    lines = iter(stream)
    pending = []
    if not scan:  # stdin: the keys of the first lines
        for n, line in enumerate(lines, start=1):
            pending.append(line)
            record = _json_line(line, n, where)
            if record is not None:
                header.update(dict.fromkeys(record))
            if sum(map(len, pending)) >= _SAMPLE_BYTES:
                break
    yield list(header), None, _size(stream)
    position = 0
    for n, line in enumerate(_chain(pending, lines), start=1):
        position += len(line)
        record = _json_line(line, n, where)
        if record is not None:
            yield record, len(line), position


def _size(stream: Any) -> int | None:
    """A file's size in bytes (None for a pipe)."""
    try:
        return None if stream is getattr(sys.stdin, "buffer", None) else os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        return None


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


def _parquet_rows(stream: Any, where: str, max_rows: int, max_bytes: int) -> Iterator[Any]:
    pa = _pyarrow(where, "reading the Parquet file")
    try:
        parquet = pa.parquet.ParquetFile(stream)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{where}: not a readable Parquet file ({exc}); read as Parquet") from None
    meta = parquet.metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    bytes_per_row = sum(g.total_byte_size for g in groups) / max(1, sum(g.num_rows for g in groups))
    batch_size = max(1, min(max_rows, int(max_bytes // max(1.0, bytes_per_row))))
    schema = parquet.schema_arrow
    yield list(schema.names), schema, meta.num_rows
    position = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        row_bytes = batch.nbytes // max(1, batch.num_rows)
        for row in batch.to_pylist():
            position += 1
            yield row, row_bytes, position


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    """A file's identity for a resume: its size and SHA-256 (one read, about 1 s per GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"size": os.path.getsize(path), "sha256": digest.hexdigest()}


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


class TableWriter:
    """Write a table as its records come: ``with TableWriter(path, header) as writer: writer.write(records)``.

    The format is ``fmt`` or ``path``'s suffix: CSV / TSV (the header row, then values as text), JSON Lines (each
    record as it is, JSON values kept) or Parquet (``schema``, an Arrow schema, else the one of the first records,
    null columns as strings); ``-`` is stdout (TSV unless ``fmt``). The file is written beside the target under a
    temporary name and renamed into place on a clean exit; on an error the temporary file is removed and the
    target left as it was. ``header_row=False`` leaves out a CSV / TSV header row (a part of a longer table)."""

    def __init__(self, path: str | os.PathLike, header: Sequence[str], fmt: str | None = None, *,
                 schema: Any = None, header_row: bool = True) -> None:
        self.stdout = str(path) == "-"
        self.path = Path(path)
        self.fmt = format_of(path, fmt) if fmt is not None or not self.stdout else "tsv"
        if self.fmt not in _WRITTEN:
            raise DataError(f"cannot write {path} as it comes: write .csv, .tsv, .jsonl or .parquet")
        if self.stdout and self.fmt == "parquet":
            raise DataError("Parquet cannot be written to stdout; name a .parquet file with --output")
        self.header, self.schema, self.header_row = list(header), schema, header_row
        self.rows = 0
        self._tmp: Path | None = None
        self._handle: Any = None
        self._csv: Any = None
        self._parquet: Any = None

    def __enter__(self) -> TableWriter:
        if self.stdout:
            self._handle = sys.stdout
        else:
            if self.path.is_dir():
                raise DataError(f"cannot write {self.path}: it is a folder")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
                os.close(fd)
                os.chmod(tmp, 0o666 & ~current_umask())
            except OSError as exc:
                raise DataError(f"cannot write {self.path}: {exc.strerror or exc}") from None
            self._tmp = Path(tmp)
            if self.fmt != "parquet":
                self._handle = open(tmp, "w", encoding="utf-8", newline="")
        if self.fmt in ("csv", "tsv"):
            self._csv = csv.writer(self._handle, delimiter="\t" if self.fmt == "tsv" else ",", lineterminator="\n")
            if self.header_row:
                self._csv.writerow(self.header)
        return self

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append ``records`` (dicts by column; a CSV / TSV / Parquet record's column outside the header is an
        error, not dropped)."""
        records = list(records)
        self.rows += len(records)
        if self.fmt == "jsonl":
            self._handle.write("".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n"
                                       for r in records))
            return
        known = set(self.header)
        extra = next((k for r in records for k in r if k not in known), None)
        if extra is not None:
            raise DataError(f"a row has column {extra!r}, which the first rows did not have: write .jsonl output "
                            f"(which keeps each row's own keys) instead of .{self.fmt}")
        if self._csv is not None:
            self._csv.writerows([[to_text(r.get(k)) for k in self.header] for r in records])
        elif records:
            self._write_arrow(records)

    def _write_arrow(self, records: list[Mapping[str, Any]]) -> None:
        pa = _pyarrow(str(self.path), "writing")
        columns = {k: [r.get(k) for r in records] for k in self.header}
        try:
            if self.schema is None:
                table = pa.table(columns)
                self.schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                         for f in table.schema])
            table = pa.table(columns, schema=self.schema)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise DataError(f"cannot write {self.path} as Parquet ({type(exc).__name__}: {str(exc).splitlines()[0]});"
                            " a column's values differ in type between rows: write .jsonl or .csv instead") from None
        self._open_parquet().write_table(table)

    def _open_parquet(self) -> Any:
        if self._parquet is None:
            pa = _pyarrow(str(self.path), "writing")
            if self.schema is None:
                self.schema = pa.schema([pa.field(k, pa.string()) for k in self.header])
            self._parquet = pa.parquet.ParquetWriter(str(self._tmp), self.schema)
        return self._parquet

    def append_file(self, part: str | os.PathLike) -> None:
        """Append a part written by a :class:`TableWriter` of the same format (CSV / TSV without its header row)."""
        if self.fmt == "parquet":
            pa = _pyarrow(str(part), "reading")
            table = pa.parquet.read_table(str(part))
            self.rows += table.num_rows
            if self.schema is None:
                self.schema = table.schema
            self._open_parquet().write_table(table)
            return
        self._handle.flush()
        with open(part, "rb") as source:
            shutil.copyfileobj(source, self._handle.buffer, 1 << 20)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.stdout:
            self._handle.flush()
            return
        try:
            if exc_type is None and self.fmt == "parquet":
                self._open_parquet()  # a table without rows still gets its columns
            if self._parquet is not None:
                self._parquet.close()
            if self._handle is not None:
                self._handle.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        except OSError as error:
            Path(self._tmp).unlink(missing_ok=True)
            raise DataError(f"cannot write {self.path}: {error.strerror or error}") from None
        finally:
            if exc_type is not None:
                Path(self._tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Parts of a resumable output
# --------------------------------------------------------------------------------------------


class PartsFolder:
    """A file output in parts, ``.<output name>.parts/`` beside ``output``: ``manifest.json`` (what the run was:
    the arguments that change the output, the input's identity, the chunk bounds), then for each finished chunk
    ``part-000000.<ext>`` (its rows, written atomically) and ``part-000000.json`` (its row count and whatever the
    caller keeps, e.g. predicted classes; written after the rows: the part counts once this exists)."""

    def __init__(self, output: str | os.PathLike, fmt: str) -> None:
        self.output = Path(output)
        self.fmt = fmt
        self.folder = self.output.parent / f".{self.output.name}.parts"
        self.manifest = self.folder / "manifest.json"

    def part(self, index: int) -> Path:
        return self.folder / f"part-{index:06d}.{self.fmt}"

    def record(self, index: int) -> Path:
        return self.folder / f"part-{index:06d}.json"

    def open(self, manifest: dict[str, Any], *, resume: bool) -> None:
        """Start the folder with ``manifest``, or with ``resume`` reuse one whose manifest is the same. An existing
        folder without ``resume``, or with another manifest, is a one-line error (never deleted here)."""
        if self.folder.exists():
            if not resume:
                raise PromptlearnError(f"{self.folder} holds the parts of an unfinished run writing {self.output}: "
                                       "pass --resume to continue it, or remove that folder to start over")
            try:
                saved = json.loads(self.manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise PromptlearnError(f"--resume: {self.folder} has no readable manifest.json; remove that folder "
                                       "to start over") from None
            if saved.get("input") != manifest.get("input"):
                raise PromptlearnError(f"--resume: the input is not the one the interrupted run read (its size or "
                                       f"SHA-256 differs); remove {self.folder} to start over")
            changed = sorted(k for k in set(saved) | set(manifest) if saved.get(k) != manifest.get(k))
            if changed:
                names = ", ".join(changed)
                raise PromptlearnError(f"--resume: the interrupted run was started with other arguments ({names}); "
                                       f"rerun it with the same ones, or remove {self.folder} to start over")
            return
        for stale in self.folder.parent.glob(f"{glob.escape(self.folder.name)}.*-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        try:  # the folder appears with its manifest, or not at all
            self.output.parent.mkdir(parents=True, exist_ok=True)
            building = Path(tempfile.mkdtemp(prefix=f"{self.folder.name}.new-", dir=self.output.parent))
            os.chmod(building, 0o777 & ~current_umask())
            atomic_write_text(building / self.manifest.name, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            os.replace(building, self.folder)
        except OSError as exc:
            raise PromptlearnError(f"cannot create {self.folder}: {exc.strerror or exc}") from None

    def finished(self) -> list[dict[str, Any]]:
        """The records of the finished parts, 0, 1, ... up to the first missing one."""
        records = []
        while self.record(len(records)).is_file() and self.part(len(records)).is_file():
            try:
                records.append(json.loads(self.record(len(records)).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                break
        return records

    def write(self, index: int, header: Sequence[str], records: list[dict[str, Any]], kept: dict[str, Any], *,
              schema: Any = None) -> Any:
        """Write part ``index`` (its rows, then its record: ``rows`` and ``kept``); returns the Arrow schema used
        (Parquet), for the next parts."""
        with TableWriter(self.part(index), header, self.fmt, schema=schema, header_row=False) as writer:
            writer.write(records)
        atomic_write_text(self.record(index), json.dumps({"rows": len(records), **kept}) + "\n")
        return writer.schema

    def assemble(self, header: Sequence[str], parts: int) -> int:
        """Write the output from the first ``parts`` parts (atomically) and remove the folder; returns the rows."""
        with TableWriter(self.output, header, self.fmt) as writer:
            for index in range(parts):
                writer.append_file(self.part(index))
        rows = sum(r["rows"] for r in self.finished()[:parts]) if self.fmt != "parquet" else writer.rows
        self.remove()
        return rows

    def remove(self) -> None:
        """Remove the folder: renamed away first (one atomic step), so a kill while it is being deleted leaves
        either the whole folder or none of it under its name."""
        if not self.folder.exists():
            return
        trash = self.folder.with_name(f"{self.folder.name}.old-{os.getpid()}")
        try:
            os.replace(self.folder, trash)
        except OSError:
            trash = self.folder
        shutil.rmtree(trash, ignore_errors=True)
