"""Streaming classify: chunks bounded in rows and bytes, every in/out format (Parquet included), and resume after
SIGKILL of a real `python -m promptlearn classify` (byte-identical output, also after two kills); refused resumes.

The kills use a `sitecustomize` that sleeps after each part is written (SLOW_PARTS seconds), so that the run is
still going when the test sees a part appear; the process is the real command otherwise."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from promptlearn import PromptClassifier
from promptlearn.cli import main
from promptlearn.io.readers import read_table
from promptlearn.io.streaming import PartsFolder, TableWriter, iter_chunks

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq

TEMPLATE = "{{ text }} it was [MASK] ."
VERBALIZER = json.dumps({"negative": ["bad"], "positive": ["great"]})
WORDS = ["good", "bad", "great", "awful", "fine", "dull", "a", "movie", "film", "story"]
REPO = Path(__file__).resolve().parents[1]


def _texts(n: int) -> list[str]:
    return [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(3 + i % 5)) for i in range(n)]


def _rows(n: int, wide: int = 0) -> list[dict]:
    return [{"id": str(i), "text": t, **({"pad": chr(97 + i % 26) * wide} if wide else {})}
            for i, t in enumerate(_texts(n))]


def _write(path: Path, rows: list[dict]) -> Path:
    fmt = path.suffix.lstrip(".")
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]), delimiter="\t" if fmt == "tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    return path


def _read(path: Path) -> tuple[list[str], list[dict]]:
    fmt = path.suffix.lstrip(".")
    if fmt == "parquet":
        table = pq.read_table(path)
        return table.column_names, table.to_pylist()
    text = path.read_text(encoding="utf-8")
    if fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        return list(rows[0]), rows
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def classify(tiny_bert_dir):
    return ["classify", "--model", str(tiny_bert_dir), "--template", TEMPLATE, "--verbalizer", VERBALIZER]


@pytest.fixture(scope="module")
def expected(tiny_bert_dir):
    """The in-memory library's probabilities for _texts(40), independent of the CLI's chunks."""
    return PromptClassifier(model=str(tiny_bert_dir), template=TEMPLATE, verbalizer=VERBALIZER).predict_proba(_texts(40))


def _run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- reading and writing in chunks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_chunks_are_bounded_in_rows_and_bytes_and_keep_every_row(tmp_path, fmt):
    rows = _rows(60, wide=1000)
    path = _write(tmp_path / f"in.{fmt}", rows)
    chunks = list(iter_chunks(path, max_rows=16, max_bytes=8_000))
    assert all(len(c) <= 16 for c in chunks)
    assert max(len(c) for c in chunks) <= 8  # 1 KB rows: the bytes bound cuts first (Arrow batches included)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.start for c in chunks] == [sum(len(d) for d in chunks[:i]) for i in range(len(chunks))]
    assert [r for c in chunks for r in c.rows] == rows
    assert chunks[0].header == ["id", "text", "pad"]
    assert [e for c in chunks for e in c.examples] == [{k: str(v) for k, v in r.items()} for r in rows]
    mapped = list(iter_chunks(path, columns={"text": "text"}, max_rows=7))
    assert [e for c in mapped for e in c.examples] == [{"text": r["text"]} for r in rows]
    assert [len(c) for c in mapped] == [7] * 8 + [4]
    if fmt != "parquet":  # the whole-file reader sees the same rows
        assert read_table(path)[2] == rows


def test_tsv_with_literal_quotes_and_a_header_only_file(tmp_path):
    path = tmp_path / "glue.tsv"
    path.write_text('sentence\tlabel\n"quoted" start\t1\nmid "q" word\t0\n', encoding="utf-8")
    rows = [r for c in iter_chunks(path) for r in c.rows]
    assert rows == read_table(path)[2] == [{"sentence": '"quoted" start', "label": "1"},
                                           {"sentence": 'mid "q" word', "label": "0"}]
    (tmp_path / "empty.csv").write_text("text,id\n", encoding="utf-8")
    chunks = list(iter_chunks(tmp_path / "empty.csv"))
    assert len(chunks) == 1 and chunks[0].rows == [] and chunks[0].header == ["text", "id"]


def test_table_writer_renames_into_place_and_removes_its_temporary_file_on_error(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with TableWriter(target, ["a", "b"]) as writer:
            writer.write([{"a": 1, "b": "x"}])
            raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old\n" and os.listdir(tmp_path) == ["out.csv"]
    with TableWriter(target, ["a", "b"]) as writer:
        writer.write([{"a": 1, "b": "x,y"}])
        writer.write([{"a": None, "b": [1, 2]}])
    assert target.read_text(encoding="utf-8") == 'a,b\n1,"x,y"\n,"[1, 2]"\n' and os.listdir(tmp_path) == ["out.csv"]


# -- classify: every format in and out ----------------------------------------------------------------------------

FORMATS = ["csv", "tsv", "jsonl", "parquet"]


@pytest.mark.parametrize("source", FORMATS)
def test_every_input_and_output_format_keeps_rows_order_and_columns(capsys, classify, expected, tmp_path, source):
    rows = _rows(40)
    path = _write(tmp_path / f"in.{source}", rows)
    for target in FORMATS:
        output = tmp_path / f"out-{source}.{target}"
        code, out, err = _run(capsys, *classify, "--input", path, "--output", output, "--chunk-rows", 6)
        assert code == 0, err
        header, got = _read(output)
        assert header == ["label", "p(negative)", "p(positive)", "id", "text"], (source, target)
        assert [(r["id"], r["text"]) for r in got] == [(r["id"], r["text"]) for r in rows]
        probabilities = np.array([[float(r["p(negative)"]), float(r["p(positive)"])] for r in got])
        np.testing.assert_allclose(probabilities, expected, atol=2e-6)
        assert [r["label"] for r in got] == [["negative", "positive"][i] for i in expected.argmax(axis=1)]
        assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    # a Parquet input's column types survive a Parquet output
    typed = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"n": pa.array(range(5), pa.int32()), "text": _texts(5)}), typed)
    assert _run(capsys, *classify, "--input", typed, "--output", tmp_path / "typed-out.parquet")[0] == 0
    schema = pq.read_schema(tmp_path / "typed-out.parquet")
    assert schema.field("n").type == pa.int32() and schema.field("p(positive)").type == pa.float64()


def test_wide_rows_classify_in_byte_bounded_chunks(capsys, classify, expected, tmp_path, monkeypatch):
    rows = _rows(40, wide=1024)
    path = _write(tmp_path / "wide.csv", rows)
    sizes = []
    original = PartsFolder.write

    def write(self, index, header, records, kept, **kwargs):
        sizes.append(len(records))
        return original(self, index, header, records, kept, **kwargs)

    monkeypatch.setattr(PartsFolder, "write", write)
    code, out, err = _run(capsys, *classify, "--input", path, "--output", tmp_path / "out.jsonl",
                          "--chunk-bytes", 5000)
    assert code == 0, err
    assert max(sizes) == 4 and sum(sizes) == 40  # 1 KB rows, 5 KB chunks
    _, got = _read(tmp_path / "out.jsonl")
    assert [r["pad"] for r in got] == [r["pad"] for r in rows]
    np.testing.assert_allclose([[r["p(negative)"], r["p(positive)"]] for r in got], expected, atol=2e-6)


def test_stdin_is_read_in_chunks_and_gives_what_the_file_gives(capsys, classify, tmp_path, monkeypatch):
    path = _write(tmp_path / "in.tsv", _rows(20))
    code, from_file, err = _run(capsys, *classify, "--input", path, "--chunk-rows", 3)
    assert code == 0, err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes()), encoding="utf-8"))
    code, from_stdin, err = _run(capsys, *classify, "--input", "-", "--format", "tsv", "--chunk-rows", 3)
    assert code == 0, err
    assert from_stdin == from_file and len(from_file.splitlines()) == 21
    one_line = _run(capsys, *classify, "--input", "-", "--format", "tsv", "--output", tmp_path / "o.csv", "--resume")
    assert one_line[0] == 2 and "cannot read stdin again" in one_line[2]


def test_classify_with_a_saved_model_dir(capsys, tiny_bert_dir, tmp_path):
    saved = tmp_path / "saved"
    classifier = PromptClassifier(model=str(tiny_bert_dir), template=TEMPLATE, verbalizer=VERBALIZER)
    classifier.save(saved)
    path = _write(tmp_path / "in.csv", _rows(10))
    code, out, err = _run(capsys, "classify", "--model-dir", saved, "--model", tiny_bert_dir, "--input", path)
    assert code == 0, err
    got = list(csv.DictReader(io.StringIO(out, newline=""), delimiter="\t"))
    expected = PromptClassifier.load(saved, model=str(tiny_bert_dir)).predict_proba(_texts(10))
    np.testing.assert_allclose([[float(r["p(negative)"]), float(r["p(positive)"])] for r in got], expected,
                               atol=2e-6)


# -- resume ----------------------------------------------------------------------------------------------------------

class Interrupt(Exception):
    pass


def _interrupted(monkeypatch, after: int) -> None:
    """Make the in-process run stop (as a kill would) once ``after`` parts are written."""
    original = PartsFolder.write

    def write(self, index, *args, **kwargs):
        if index >= after:
            raise KeyboardInterrupt
        return original(self, index, *args, **kwargs)

    monkeypatch.setattr(PartsFolder, "write", write)


def test_resume_is_refused_on_changed_input_or_arguments_and_required_for_leftover_parts(
        capsys, classify, tmp_path, monkeypatch):
    path = _write(tmp_path / "in.csv", _rows(20))
    output = tmp_path / "out.csv"
    argv = [*classify, "--input", path, "--output", output, "--chunk-rows", 4]
    with monkeypatch.context() as patch:
        _interrupted(patch, after=2)
        assert _run(capsys, *argv)[0] == 130
    parts = tmp_path / ".out.csv.parts"
    assert sorted(p.name for p in parts.iterdir() if p.suffix == ".csv") == ["part-000000.csv", "part-000001.csv"]
    assert not output.exists()

    def one_line_error(result, *fragments):
        code, out, err = result
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert all(f in lines[0] for f in fragments), lines[0]

    one_line_error(_run(capsys, *argv), "--resume", ".out.csv.parts")  # leftover parts: not silently deleted
    one_line_error(_run(capsys, *argv, "--resume", "--batch-size", 3), "--batch-size", "other arguments")
    one_line_error(_run(capsys, *argv[:-1], 5, "--resume"), "--chunk-rows")
    rows = _rows(20)
    rows[-1]["text"] = "changed"
    _write(path, rows)
    one_line_error(_run(capsys, *argv, "--resume"), "input", "SHA-256")
    assert parts.is_dir() and not output.exists()  # refused: nothing removed, nothing written


def _reference(capsys, classify, path: Path, output: Path) -> bytes:
    code, _, err = _run(capsys, *classify, "--input", path, "--output", output, "--chunk-rows", 4)
    assert code == 0, err
    return output.read_bytes()


def _start(argv: list, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "promptlearn", *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(process: subprocess.Popen, record: Path, timeout: float = 120) -> None:
    """SIGKILL ``process`` as soon as ``record`` (a part's record file) exists."""
    deadline = time.monotonic() + timeout
    while not record.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no part appeared"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def test_sigkill_twice_then_resume_gives_the_uninterrupted_output_byte_for_byte(capsys, classify, tmp_path):
    fmt = "csv"  # a header row, then the parts' rows: the assembly most likely to go wrong
    path = _write(tmp_path / f"in.{fmt}", _rows(40))
    reference = _reference(capsys, classify, path, tmp_path / f"reference.{fmt}")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, time\n"
        "if os.environ.get('SLOW_PARTS'):\n"
        "    import promptlearn.io.streaming as s\n"
        "    write = s.PartsFolder.write\n"
        "    def slow(self, *a, **k):\n"
        "        r = write(self, *a, **k); time.sleep(float(os.environ['SLOW_PARTS'])); return r\n"
        "    s.PartsFolder.write = slow\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "SLOW_PARTS": "0.3"}
    output = tmp_path / f"out.{fmt}"
    parts = tmp_path / f".out.{fmt}.parts"
    argv = [*classify, "--input", path, "--output", output, "--chunk-rows", 4]
    _kill_when(_start(argv, env), parts / "part-000000.json")  # killed after the 1st part
    assert not output.exists()
    # two kills in a row: the resumed run killed again after the 3rd part
    _kill_when(_start([*argv, "--resume"], env), parts / "part-000002.json")
    assert not output.exists()
    finished = sorted(p.name for p in parts.glob("part-*.json"))
    assert finished and len(finished) < 10  # killed part way
    code, _, err = _run(capsys, *argv, "--resume")  # the last resume in this process (a third start saved)
    assert code == 0, err
    assert f"{4 * len(finished)} read from the interrupted run's parts" in err
    assert output.read_bytes() == reference
    assert not parts.exists()


# -- evaluate ----------------------------------------------------------------------------------------------------------

def test_evaluate_streams_a_file_and_resumes_with_the_same_figures_and_table(capsys, tiny_bert_dir, expected,
                                                                            tmp_path, monkeypatch):
    rows = [{"text": t, "label": ["negative", "positive"][i % 2], "id": i} for i, t in enumerate(_texts(40))]
    data = _write(tmp_path / "dev.jsonl", rows)
    argv = ["evaluate", "--model", tiny_bert_dir, "--template", TEMPLATE, "--verbalizer", VERBALIZER, "--data", data,
            "--chunk-rows", 6]
    code, _, err = _run(capsys, *argv, "--output", tmp_path / "streamed.csv")
    assert code == 0, err
    # the same data read whole (--limit above its size reads it whole: no subset)
    code, _, err = _run(capsys, *argv, "--limit", 1000, "--output", tmp_path / "whole.csv")
    assert code == 0, err
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    header, got = _read(tmp_path / "streamed.csv")
    assert header == ["raw_label", "raw_p(negative)", "raw_p(positive)", "calibrated_label", "calibrated_p(negative)",
                      "calibrated_p(positive)", "label", "text", "id"]
    assert [r["id"] for r in got] == [str(i) for i in range(40)]
    np.testing.assert_allclose([[float(r["raw_p(negative)"]), float(r["raw_p(positive)"])] for r in got], expected,
                               atol=2e-6)
    report = json.loads((tmp_path / "streamed.metrics.json").read_text())
    truth = np.array([i % 2 for i in range(40)])
    assert report["n_examples"] == 40
    assert report["variants"]["raw"]["accuracy"] == pytest.approx(float((expected.argmax(axis=1) == truth).mean()))
    whole = json.loads((tmp_path / "whole.metrics.json").read_text())
    assert {k: report[k] for k in ("accuracy", "macro_f1", "variants")} == \
        {k: whole[k] for k in ("accuracy", "macro_f1", "variants")}
    # killed after 3 parts, resumed: the same table and figures
    with monkeypatch.context() as patch:
        _interrupted(patch, after=3)
        assert _run(capsys, *argv, "--output", tmp_path / "resumed.csv")[0] == 130
    code, _, err = _run(capsys, *argv, "--output", tmp_path / "resumed.csv", "--resume")
    assert code == 0, err
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "streamed.csv").read_bytes()
    resumed = json.loads((tmp_path / "resumed.metrics.json").read_text())
    assert resumed["resumed_examples"] == 18
    assert {k: resumed[k] for k in ("accuracy", "variants")} == {k: report[k] for k in ("accuracy", "variants")}
