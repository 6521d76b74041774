"""Data files as users have them, read into one :class:`Table` (a header and rows) and written back.

Formats, picked by the file's suffix (or an explicit format; stdin is sniffed):

- ``.csv`` / ``.tsv``: a header row, then one row per example (TSV quoting is detected: CSV-style or literal);
- ``.json``: one JSON document -- an array of records (``[{"text": ..., "label": ...}, ...]``), an object of
  records (``{"k1": {...}, "k2": {...}}``; the key becomes an ``id`` column unless the records have one) or an
  object of columns (``{"text": [...], "label": [...]}``, equal lengths); a ``.json`` file that is JSON Lines
  is read as such;
- ``.jsonl`` (also ``.ndjson``, ``.jsonlines``): one JSON object per line (a whole JSON document is accepted);
- ``.parquet``: read with pyarrow (imported only then; ``pip install pyarrow``);
- Hugging Face ``datasets`` (``hf:NAME[:CONFIG[:SPLIT]]`` from the Hub, and folders written by ``save_to_disk``)
  are read into the same :class:`Table` by :mod:`promptlearn.io.hf_datasets`.

A parse error names the format that was assumed, why (the suffix, the format given, a sniff), and the
alternatives. Rows keep their values as read (JSON types, Arrow values); ``Table.records`` holds them as text.
This module imports neither torch nor transformers.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import atomic_write_path
from ..core.errors import DataError

__all__ = [
    "FORMATS",
    "Table",
    "format_of",
    "read_file",
    "split_aliases",
    "write_table",
]

logger = logging.getLogger(__name__)

#: The file formats read and written, by name.
FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".json-lines": "jsonl",
    ".jsonlines": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_FORMAT_ALIASES = {"json-lines": "jsonl", "jsonlines": "jsonl", "ndjson": "jsonl", "tab": "tsv", "pq": "parquet"}
_DESCRIBED = {
    "csv": "CSV with a header row",
    "tsv": "TSV with a header row",
    "jsonl": "JSON Lines, one JSON object per line",
    "parquet": "Parquet",
}
_SUFFIX_OF = {"csv": ".csv", "tsv": ".tsv", "json": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}
_USE_SUFFIXES = "use .csv, .tsv, .json, .jsonl or .parquet"

#: Split names that stand for one another when a folder or dataset lacks the one asked for.
_SPLIT_GROUPS = (
    ("dev", "validation", "valid", "val", "dev_matched", "validation_matched"),
    ("test", "testing"),
    ("train", "training"),
)


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A data source's rows: ``header`` (columns in order), ``rows`` (values as read), ``records`` (as text)."""

    where: str  # the path or spec, for messages
    header: list[str]
    rows: list[dict[str, Any]]
    records: list[dict[str, str]]
    line_of: list[int]  # each row's line in the file (CSV, TSV, JSON Lines) or its position from 1
    has_key: list[set[str]] | None = None  # JSON: the keys of each record (a key a record lacks stays absent)
    unit: str = "line"  # what line_of counts: line, record or row

    def __len__(self) -> int:
        return len(self.rows)

    def head(self, n: int | None) -> Table:
        """The first ``n`` rows, in order (all of them for ``None``)."""
        if n is None or n >= len(self.rows):
            return self
        if n < 0:
            raise DataError(f"head must be non-negative, got {n}")
        return Table(self.where, self.header, self.rows[:n], self.records[:n], self.line_of[:n],
                     self.has_key[:n] if self.has_key is not None else None, self.unit)

    def without(self, columns: Sequence[str]) -> Table:
        """The table without ``columns`` in its header and records (``rows`` keep every value as read)."""
        drop = set(columns)
        if not drop & set(self.header):
            return self
        return Table(self.where, [c for c in self.header if c not in drop], self.rows,
                     [{k: v for k, v in rec.items() if k not in drop} for rec in self.records], self.line_of,
                     [keys - drop for keys in self.has_key] if self.has_key is not None else None, self.unit)


def _from_records(numbered: Sequence[tuple[int, dict[str, Any]]], where: str, unit: str, *,
                  keyed: bool = True) -> Table:
    present: dict[str, None] = {}
    for _, rec in numbered:
        present.update(dict.fromkeys(rec))
    rows = [rec for _, rec in numbered]
    return Table(where, list(present), rows, [{k: to_text(v) for k, v in rec.items()} for rec in rows],
                 [n for n, _ in numbered], [set(rec) for rec in rows] if keyed else None, unit)


# --------------------------------------------------------------------------------------------
# Low-level helpers (shared with promptlearn.io.tasks' readers of the shipped data)
# --------------------------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"expected a data file but found a folder: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def decode_text(raw: bytes, path: Path | str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc}); re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                        ) from None


def to_text(value: object) -> str:
    """A value as text: strings as they are, None as "", booleans as true/false, others as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def physical_lines(text: str) -> int:
    """Number of text lines, counting a last line without a final newline (unlike wc -l)."""
    if not text:
        return 0
    n = text.count("\n")
    return n if text.endswith("\n") else n + 1


def parse_delimited(text: str, delimiter: str, quoted: bool, where: Path | str) -> list[list[str]]:
    """Rows of a CSV/TSV text; ``quoted=False`` treats quotes as ordinary characters (GLUE TSVs)."""
    quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=quoted)
    try:
        return [row for row in reader]
    except csv.Error as exc:
        raise DataError(f"{where}, line {reader.line_num}: malformed {'CSV' if delimiter == ',' else 'TSV'} ({exc})") from None


def iter_jsonl(path: Path | str, text: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON-lines file."""
    if text is None:
        text = decode_text(read_bytes(Path(path)), path)
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {n}: bad JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}, line {n}: expected a JSON object, got {type(rec).__name__}")
        yield n, rec


def first_line(exc: BaseException) -> str:
    """An error as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


def format_of(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format (one of :data:`FORMATS`) of ``path``: ``fmt`` when given (aliases such as ``ndjson``
    accepted), else from the suffix; an unknown one is a :class:`DataError`."""
    if fmt is not None:
        key = str(fmt).lower().lstrip(".")
        key = _FORMAT_ALIASES.get(key, key)
        if key not in FORMATS:
            raise DataError(f"unknown format {fmt!r} for {path}; use {', '.join(FORMATS)}")
        return key
    name = Path(path).name.lower()
    found = next((f for ext, f in _SUFFIXES.items() if name.endswith(ext)), None)
    if found is None:
        raise DataError(f"cannot tell the format of {path} from its extension; {_USE_SUFFIXES}, "
                        "or give the format (--format)")
    return found


def _suffix_reason(path: str | os.PathLike) -> str:
    name = Path(path).name.lower()
    ext = next((ext for ext in _SUFFIXES if name.endswith(ext)), Path(path).suffix)
    return f"by the {ext} suffix"


def _others(fmt: str) -> str:
    """'CSV files should be named .csv, ...' for the formats other than ``fmt``."""
    names = {"csv": "comma-separated", "tsv": "tab-separated", "json": "JSON", "jsonl": "JSON Lines",
             "parquet": "Parquet"}
    return "; ".join(f"{names[f]} files should be named {_SUFFIX_OF[f]}" for f in FORMATS if f != fmt)


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


def read_file(path: str | os.PathLike, fmt: str | None = None) -> Table:
    """Read a data file (or stdin for ``"-"``) into a :class:`Table`; the format comes from ``fmt``, else the
    suffix (stdin: sniffed, Parquet by its magic bytes, JSON by a leading ``{`` or ``[``, TSV by a tab in the
    first line, else CSV)."""
    stdin = str(path) == "-"
    where = "<stdin>" if stdin else str(path)
    if fmt is not None:
        fmt = format_of(where, fmt)
        reason = f"by the format given, {fmt}"
    if stdin:
        raw: bytes | str = _read_stdin(where)
    else:
        p = Path(path)
        if fmt is None:
            fmt = format_of(p)
            reason = _suffix_reason(p)
        raw = read_bytes(p)
    if fmt is None:  # stdin, sniffed
        fmt, reason = _sniff(raw)
    if isinstance(raw, bytes) and raw[:4] == b"PAR1" and fmt != "parquet":
        raise DataError(f"{where} is a Parquet file, but was to be read as {_DESCRIBED.get(fmt, fmt.upper())} "
                        f"({reason}); Parquet files should be named .parquet (or give --format parquet)")
    if fmt == "parquet":
        if isinstance(raw, str):
            raise DataError(f"{where}: Parquet is binary and cannot come through a text stream")
        return _parquet_table(raw, where, reason)
    text = decode_text(raw, where) if isinstance(raw, bytes) else raw
    if fmt in ("json", "jsonl"):
        return _json_table(text, fmt, where, reason)
    return _delimited_table(text, fmt, where, reason)


def _read_stdin(where: str) -> bytes | str:
    """stdin's bytes (decoded later as UTF-8 strictly, not with the locale's handler), or its text when it is a
    text stream without bytes (tests, embedding applications)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return buffer.read()
    text = sys.stdin.read()
    return text[1:] if text.startswith("\ufeff") else text


def _sniff(raw: bytes | str) -> tuple[str, str]:
    if isinstance(raw, bytes) and raw[:4] == b"PAR1":
        return "parquet", "sniffed: it starts with Parquet's magic bytes"
    text = raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return "json", f"sniffed: it starts with {stripped[0]!r}"
    first = stripped.split("\n", 1)[0]
    if "\t" in first:
        return "tsv", "sniffed: its first line has tabs"
    return "csv", "sniffed: its first line has no tabs"


# -- CSV / TSV ---------------------------------------------------------------------------------


def _delimited_table(text: str, fmt: str, where: str, reason: str) -> Table:
    try:
        parsed = _tsv_rows(text, where) if fmt == "tsv" else _csv_rows(text, where)
    except DataError as exc:
        raise DataError(f"{exc}; read as {_DESCRIBED[fmt]} ({reason}); {_others(fmt)}") from None
    if not parsed:
        raise DataError(f"{where} is empty; CSV/TSV files need a header row")
    header, body = parsed[0], parsed[1:]
    check_header(header, fmt, where, f"{_DESCRIBED[fmt]} ({reason})")
    records = [dict(zip(header, row)) for row in body]
    return Table(where, header, records, records, list(range(2, len(body) + 2)), None, "line")


def check_header(header: Sequence[str], fmt: str, where: str, read_as: str) -> None:
    """A CSV / TSV header that shows the file was read with the wrong delimiter (one column holding the other
    delimiter), or that names a column twice, is a DataError; ``read_as`` says how it was read."""
    if len(header) == 1 and ("\t" if fmt == "csv" else ",") in header[0]:
        other = "tsv" if fmt == "csv" else "csv"
        raise DataError(f"{where}: read as {read_as}, but its header {header[0]!r} holds "
                        f"{'tabs' if fmt == 'csv' else 'commas'} and no {'commas' if fmt == 'csv' else 'tabs'}: "
                        f"{other.upper()} files should be named .{other} (or give --format {other})")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise DataError(f"{where}: duplicate column name(s) {duplicates} in the header")


def _tsv_rows(text: str, where: str) -> list[list[str]]:
    """Parse a TSV whose quoting is unknown: CSV-style (quotes doubled inside quoted fields) or GLUE-style (quotes literal)."""
    quoted = None
    try:
        quoted = parse_delimited(text, "\t", quoted=True, where=where)
    except DataError:
        pass
    none = parse_delimited(text, "\t", quoted=False, where=where)

    def consistent(rows: list[list[str]] | None) -> bool:
        return bool(rows) and all(len(r) == len(rows[0]) for r in rows)

    ok_q = consistent(quoted) and not any("\n" in f or "\r" in f for r in quoted for f in r)
    ok_n = consistent(none)
    if ok_q and ok_n and quoted != none:
        # CSV quoting leaves every quote-bearing field fully wrapped in quotes; literal quotes do not
        fully_wrapped = all(
            len(f) >= 2 and f[0] == '"' and f[-1] == '"' for r in none for f in r if '"' in f
        )
        return quoted if fully_wrapped else none
    if ok_q:
        return quoted  # type: ignore[return-value]
    if ok_n:
        return none
    if consistent(quoted):  # CSV-style quoted fields that span lines, and no literal reading fits
        return quoted  # type: ignore[return-value]
    if not none:
        return []
    width = len(none[0])
    bad = next(i for i, r in enumerate(none) if len(r) != width)
    raise DataError(f"{where}, line {bad + 1}: {len(none[bad])} columns, but the header has {width}")


def _csv_rows(text: str, where: str) -> list[list[str]]:
    rows = parse_delimited(text, ",", quoted=True, where=where)
    rows = [r for r in rows if r]  # csv yields [] for blank lines
    if rows:
        width = len(rows[0])
        for i, r in enumerate(rows):
            if len(r) != width:
                raise DataError(f"{where}, row {i + 1}: {len(r)} columns, but the header has {width}")
    return rows


# -- JSON and JSON Lines -------------------------------------------------------------------------


def _json_table(text: str, fmt: str, where: str, reason: str) -> Table:
    """JSON Lines, or one JSON document of records; each is tried when the other does not parse."""
    if not text.strip():
        return Table(where, [], [], [], [], [], "line")
    if fmt == "jsonl":
        try:
            return _from_records(list(iter_jsonl(where, text)), where, "line")
        except DataError as exc:
            lines_error = exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise DataError(f"{lines_error}; read as {_DESCRIBED['jsonl']} ({reason}); a JSON array or object of "
                            "records should be named .json") from None
        return _from_document(data, where, reason)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        document_error = exc
    else:
        return _from_document(data, where, reason)
    try:
        numbered = list(iter_jsonl(where, text))
    except DataError as exc:
        lines_error = exc
    else:
        logger.info("%s: JSON Lines (one object per line), not one JSON document: read as JSON Lines", where)
        return _from_records(numbered, where, "line")
    if _looks_like_lines(text):
        raise DataError(f"{lines_error}; read as JSON Lines ({reason}, and its first line is a whole JSON object); "
                        "JSON Lines files should be named .jsonl")
    start = text.lstrip()[:1]
    shape = ("a JSON array of records" if start == "[" else "a JSON object of records or of columns" if start == "{"
             else "a JSON document (an array of records, or an object of records or of columns)")
    raise DataError(f"{where}, line {document_error.lineno}: bad JSON ({document_error.msg} at column "
                    f"{document_error.colno}); read as {shape} ({reason}); JSON Lines files should be named .jsonl")


def _looks_like_lines(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except json.JSONDecodeError:
        return False


def _from_document(data: Any, where: str, reason: str) -> Table:
    """Records from one JSON document: an array of records, an object of records or of columns, or one record."""
    if isinstance(data, list):
        bad = next((i for i, rec in enumerate(data) if not isinstance(rec, dict)), None)
        if bad is not None:
            raise DataError(f"{where}: item {bad + 1} of the JSON array is a {type(data[bad]).__name__}, not an "
                            f"object; read as a JSON array of records ({reason}), each an object of column: value")
        return _from_records(list(enumerate(data, start=1)), where, "record")
    if isinstance(data, dict):
        values = list(data.values())
        if values and all(isinstance(v, list) for v in values):
            lengths = {k: len(v) for k, v in data.items()}
            if len(set(lengths.values())) > 1:
                shown = ", ".join(f"{k}: {n}" for k, n in list(lengths.items())[:6])
                raise DataError(f"{where}: read as a JSON object of columns ({reason}), but the columns differ in "
                                f"length ({shown}); an object of records maps each key to an object")
            n = len(values[0])
            return _from_records([(i + 1, {k: data[k][i] for k in data}) for i in range(n)], where, "row",
                                 keyed=False)
        if values and all(isinstance(v, dict) for v in values):
            add_id = not any("id" in rec for rec in values)
            records = [{"id": key, **rec} if add_id else rec for key, rec in data.items()]
            return _from_records(list(enumerate(records, start=1)), where, "record")
        return _from_records([(1, data)], where, "record")  # one record (a one-line JSON Lines file)
    raise DataError(f"{where}: read as JSON ({reason}), but it holds a {type(data).__name__}, not records: use an "
                    "array of objects, an object of records or of columns, or JSON Lines (.jsonl)")


# -- Parquet and Arrow ---------------------------------------------------------------------------


def _pyarrow(where: str, why: str) -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401 - the submodule is what reads and writes Parquet
    except ImportError:
        raise DataError(f"{why} {where} needs pyarrow, which is not installed: pip install pyarrow (or promptlearn[data])") from None
    return pyarrow


def _parquet_table(raw: bytes, where: str, reason: str) -> Table:
    pa = _pyarrow(where, "reading the Parquet file")
    try:
        arrow = pa.parquet.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{where}: not a readable Parquet file ({first_line(exc)}); read as Parquet ({reason}); "
                        f"{_others('parquet')}") from None
    return columns_table(arrow.column_names, arrow.to_pylist(), where)


def columns_table(header: list[str], rows: list[dict[str, Any]], where: str,
                  class_names: dict[str, list[str]] | None = None) -> Table:
    """A table of rows that all have every column (Parquet, datasets); ``class_names`` turns those columns'
    integers into names in the text view (a Hugging Face ClassLabel; -1 = no label)."""
    records = []
    for row in rows:
        rec = {k: to_text(row.get(k)) for k in header}
        for col, names in (class_names or {}).items():
            value = row.get(col)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
                rec[col] = names[value]
            elif value is None or value == -1:
                rec[col] = ""
        records.append(rec)
    return Table(where, list(header), rows, records, list(range(1, len(rows) + 1)), None, "row")


# -- Splits ----------------------------------------------------------------------------------------


def split_aliases(split: str) -> tuple[str, ...]:
    """``split`` and the names that stand for it (dev: validation, val, dev_matched, ...), in that order."""
    for group in _SPLIT_GROUPS:
        if split in group:
            return (split, *(s for s in group if s != split))
    return (split,)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def write_table(path: str | os.PathLike, header: Sequence[str], rows: Sequence[dict[str, Any]],
                fmt: str | None = None) -> Path:
    """Write ``rows`` (every column of ``header``, in order) atomically, in the format of ``path``'s suffix (or
    ``fmt``): CSV / TSV (values as text, quoted where needed), JSON Lines, JSON (an array of records) or Parquet."""
    from .artifacts import atomic_write

    path = Path(path)
    try:
        fmt = format_of(path, fmt)
    except DataError:
        raise DataError(f"cannot tell the format to write {path} in from its extension; {_USE_SUFFIXES}") from None
    header = list(header)
    if fmt == "parquet":
        return _write_parquet(path, header, rows)

    def write(handle: Any) -> None:
        if fmt in ("csv", "tsv"):
            writer = csv.DictWriter(handle, fieldnames=header, delimiter="\t" if fmt == "tsv" else ",",
                                    lineterminator="\n", extrasaction="ignore", restval="")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: v if isinstance(v, str) else to_text(v) for k, v in row.items()})
        elif fmt == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
        else:
            handle.write(json.dumps(list(rows), ensure_ascii=False, indent=1, default=_json_default) + "\n")

    return atomic_write(path, write)


def _write_parquet(path: Path, header: list[str], rows: Sequence[dict[str, Any]]) -> Path:
    pa = _pyarrow(str(path), "writing")
    try:
        arrow = pa.Table.from_pylist([{k: row.get(k) for k in header} for row in rows]) if rows else \
            pa.table({k: pa.array([], pa.string()) for k in header})
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise DataError(f"cannot write {path} as Parquet ({first_line(exc)}); write .jsonl or .csv instead") from None
    return atomic_write_path(path, lambda target: pa.parquet.write_table(arrow, target), DataError)


