"""Data as users have it (issue 33, item 3): JSON / JSON Lines / CSV / TSV / Parquet files, Hugging Face datasets
(saved folders; Hub names mocked -- the Hub is unreachable here), data folders of any task (the task told by the
columns), ``--head``, the ``sample`` command, and errors that name the format assumed.

Library-level tests call :mod:`promptlearn.io.readers` / :mod:`promptlearn.io.tables`; CLI tests run ``promptlearn.cli.main``
in-process on the tiny local models (conftest.py). None needs the shared data folder.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from promptlearn.io import hf_datasets, readers, sampling
from promptlearn.io import tables as T
from promptlearn.cli import main
from promptlearn.core.errors import DataError

ROWS = [
    ("a good movie , the actors were great .", "positive"),
    ("bad film", "negative"),
    ("i think the story was boring and slow .", "negative"),
    ("fine", "positive"),
    ("awful acting", "negative"),
    ("great fun", "positive"),
]
RECORDS = [{"text": t, "label": y} for t, y in ROWS]
EXAMPLES = [{"text": t} for t, _ in ROWS]
LABELS = [y for _, y in ROWS]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


# -- JSON and JSON Lines ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["array", "array_compact", "columns", "records", "lines"])
def test_json_shapes_read_as_records(tmp_path, shape):
    """A .json file as users write it: an array of records (today: refused unless it starts with '['), an object of
    columns or of records (today: 'line 1: bad JSON'), and JSON Lines under .json (still accepted)."""
    if shape == "array":
        text = json.dumps(RECORDS, indent=2)
    elif shape == "array_compact":
        text = json.dumps(RECORDS)
    elif shape == "columns":
        text = json.dumps({"text": [t for t, _ in ROWS], "label": LABELS}, indent=2)
    elif shape == "records":
        text = json.dumps({f"r{i}": rec for i, rec in enumerate(RECORDS)}, indent=2)
    else:
        text = "".join(json.dumps(rec) + "\n" for rec in RECORDS)
    path = write(tmp_path / "dev.json", text)
    examples, labels = readers.read_examples(path)
    assert labels == LABELS
    if shape == "records":  # the key is kept as an id column
        assert examples == [{"id": f"r{i}", **e} for i, e in enumerate(EXAMPLES)]
    else:
        assert examples == EXAMPLES
    assert readers.load_data(path) == (examples, labels)


def test_jsonl_file_holding_one_json_document_is_read(tmp_path):
    path = write(tmp_path / "dev.jsonl", json.dumps({"text": [t for t, _ in ROWS], "label": LABELS}, indent=2))
    assert readers.read_examples(path) == (EXAMPLES, LABELS)


def test_json_object_of_columns_of_unequal_length_is_an_error(tmp_path):
    path = write(tmp_path / "d.json", json.dumps({"text": ["a", "b"], "label": ["x"]}))
    with pytest.raises(DataError) as info:
        readers.read_examples(path)
    assert "object of columns" in one_line(info) and "text: 2, label: 1" in str(info.value)


def test_json_array_of_non_objects_is_an_error(tmp_path):
    path = write(tmp_path / "d.json", '["a", "b"]')
    with pytest.raises(DataError, match=r"item 1 of the JSON array is a str"):
        readers.read_examples(path)


@pytest.mark.parametrize("name, text, fragments", [
    # the case: a JSON object or array in a .json file, with a syntax error
    ("dev.json", '{\n  "text": "good",\n  oops\n}\n',
     ["dev.json, line 3: bad JSON", "read as a JSON object of records or of columns", "by the .json suffix",
      "JSON Lines files should be named .jsonl"]),
    ("dev.json", '[\n  {"text": "good", "label": "positive"},\n  {"text": "bad" "label": "negative"}\n]\n',
     ["dev.json, line 3: bad JSON", "read as a JSON array of records", "by the .json suffix",
      "JSON Lines files should be named .jsonl"]),
    # JSON Lines named .json, with a bad line: read as JSON Lines, and said so
    ("dev.json", '{"text": "good", "label": "positive"}\n{"text": "bad" "label": "negative"}\n',
     ["dev.json, line 2: bad JSON", "read as JSON Lines", "its first line is a whole JSON object",
      "should be named .jsonl"]),
    ("dev.jsonl", '{"text": "good"}\n{"text": oops}\n',
     ["dev.jsonl, line 2: bad JSON", "read as JSON Lines", "by the .jsonl suffix",
      "a JSON array or object of records should be named .json"]),
])
def test_bad_json_names_the_format_assumed(tmp_path, name, text, fragments):
    with pytest.raises(DataError) as info:
        readers.read_examples(write(tmp_path / name, text))
    message = one_line(info)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_stdin_json_array_is_sniffed(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(RECORDS, indent=2)))
    assert readers.read_examples("-") == (EXAMPLES, LABELS)


# -- CSV / TSV mix-ups, unknown suffixes ---------------------------------------------------------------------------

def test_tsv_named_csv_says_so(tmp_path):
    path = write_csv(tmp_path / "dev.csv", ["text", "label"], [list(r) for r in ROWS], delimiter="\t")
    with pytest.raises(DataError) as info:
        readers.read_examples(path)
    message = one_line(info)
    assert "read as CSV" in message and "by the .csv suffix" in message and "should be named .tsv" in message


def test_malformed_csv_names_the_format_and_alternatives(tmp_path):
    path = write(tmp_path / "dev.csv", 'text,label\n"unclosed,positive\nfine,negative\n')
    with pytest.raises(DataError) as info:
        readers.read_examples(path)
    message = one_line(info)
    assert message.startswith(f"{path}") and "read as CSV" in message and ".tsv" in message


def test_unknown_extension_lists_the_formats(tmp_path):
    path = write(tmp_path / "dev.txt", "text,label\nx,y\n")
    with pytest.raises(DataError) as info:
        readers.read_examples(path)
    message = one_line(info)
    assert "cannot tell the format" in message and ".json" in message and ".parquet" in message
    assert readers.read_examples(path, fmt="csv") == ([{"text": "x"}], ["y"])


# -- Parquet ----------------------------------------------------------------------------------------------------

def test_parquet_file(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "dev.parquet"
    pq.write_table(pa.table({"text": [t for t, _ in ROWS], "label": LABELS, "n": list(range(len(ROWS)))}), path)
    examples, labels = readers.read_examples(path)
    assert labels == LABELS and examples == [{**e, "n": str(i)} for i, e in enumerate(EXAMPLES)]
    _, header, rows = readers.read_table(path)
    assert header == ["text", "label", "n"] and rows[2]["n"] == 2  # values as read


def test_parquet_named_csv_says_so(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "dev.csv"
    pq.write_table(pa.table({"text": ["a"]}), path)
    with pytest.raises(DataError) as info:
        readers.read_examples(path)
    assert "is a Parquet file" in one_line(info) and ".parquet" in str(info.value)


def test_parquet_without_pyarrow_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "dev.parquet"
    path.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError) as info:
        readers.read_examples(path)
    assert "pip install pyarrow" in one_line(info)


def test_unreadable_parquet_names_the_format(tmp_path):
    pytest.importorskip("pyarrow")
    path = write(tmp_path / "dev.parquet", "text,label\nx,y\n")
    with pytest.raises(DataError) as info:
        readers.read_examples(path)
    message = one_line(info)
    assert "not a readable Parquet file" in message and "by the .parquet suffix" in message and ".csv" in message


# -- Hugging Face datasets ------------------------------------------------------------------------------------------

@pytest.fixture
def hf_dataset():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"idx": datasets.Value("int32"), "sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    return datasets.Dataset.from_dict({"idx": list(range(len(ROWS))), "sentence": [t for t, _ in ROWS],
                                       "label": [["negative", "positive"].index(y) for y in LABELS]},
                                      features=features)


def test_saved_dataset_folder(tmp_path, hf_dataset):
    """A folder written by save_to_disk: the task is told by its columns (sentence -> text), ClassLabel integers
    read as their class names, idx is not text."""
    folder = tmp_path / "saved"
    hf_dataset.save_to_disk(str(folder))
    assert readers.load_data(folder) == (EXAMPLES, LABELS)
    examples, labels = readers.read_examples(folder)  # a plain read keeps the columns' own names
    assert examples[0] == {"idx": "0", "sentence": ROWS[0][0]} and labels == LABELS


def test_saved_dataset_dict_splits(tmp_path, hf_dataset):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved_dict"
    datasets.DatasetDict({"train": hf_dataset, "validation": hf_dataset.select([0, 1])}).save_to_disk(str(folder))
    assert readers.load_data(folder, "train") == (EXAMPLES, LABELS)
    assert readers.load_data(folder, "dev") == (EXAMPLES[:2], LABELS[:2])  # dev: the validation split
    with pytest.raises(DataError) as info:
        readers.load_data(folder, "test")
    assert "split 'test'" in one_line(info) and "train, validation" in str(info.value)
    with pytest.raises(DataError, match="holds the splits train, validation; name one"):
        readers.read_examples(folder)


def test_hub_spec_syntax():
    assert hf_datasets.parse_hub_spec("hf:imdb") == ("imdb", None, None)
    assert hf_datasets.parse_hub_spec("hf:glue:sst2") == ("glue", "sst2", None)
    assert hf_datasets.parse_hub_spec("hf:glue:sst2:validation") == ("glue", "sst2", "validation")
    assert hf_datasets.parse_hub_spec("hf:stanfordnlp/imdb::test") == ("stanfordnlp/imdb", None, "test")
    for bad in ("hf:", "hf::x", "hf:a:b:c:d"):
        with pytest.raises(DataError, match=r"hf:NAME\[:CONFIG\[:SPLIT\]\]"):
            hf_datasets.parse_hub_spec(bad)


def test_hub_dataset_is_loaded_by_name_config_and_split(monkeypatch, hf_dataset):
    datasets = pytest.importorskip("datasets")
    calls = []

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        if split is None:
            return datasets.DatasetDict({"train": hf_dataset, "validation": hf_dataset.select([0, 1])})
        return hf_dataset

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert readers.load_data("hf:glue:sst2:train") == (EXAMPLES, LABELS)
    assert readers.load_data("hf:glue:sst2", "dev") == (EXAMPLES[:2], LABELS[:2])  # --split dev: validation
    assert calls == [("glue", "sst2", "train"), ("glue", "sst2", None)]


def test_hub_failure_is_one_line(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'imdb' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError) as info:
        readers.load_data("hf:imdb")
    message = one_line(info)
    assert "cannot load hf:imdb from the Hugging Face Hub" in message and "ConnectionError" in message
    assert "save_to_disk" in message


def test_datasets_missing_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataError) as info:
        readers.load_data("hf:imdb")
    assert "pip install datasets" in one_line(info)
    folder = tmp_path / "saved"
    folder.mkdir()
    write(folder / "dataset_dict.json", '{"splits": ["train"]}')
    with pytest.raises(DataError, match="pip install datasets"):
        readers.load_data(folder, "train")


# -- data folders of any task ---------------------------------------------------------------------------------------

def _task_folder(root: Path, name: str, header: list[str], rows: list[list], suffix: str = ".tsv",
                 splits=("train", "dev", "test")) -> Path:
    folder = root / name / "16-13"
    folder.mkdir(parents=True)
    for split in splits:
        path = folder / f"{split}{suffix}"
        if suffix == ".jsonl":
            write(path, "".join(json.dumps(dict(zip(header, row))) + "\n" for row in rows))
        else:
            write_csv(path, header, rows, delimiter="\t" if suffix == ".tsv" else ",")
    return folder


def test_folder_of_an_unknown_task_is_read_by_its_columns(tmp_path):
    """Today: 'cannot tell the task of ...: its parent folder 'reviews' is not an LM-BFF task'."""
    folder = _task_folder(tmp_path, "reviews", ["sentence", "label"], [list(r) for r in ROWS])
    for split in ("train", "dev", "test"):
        assert readers.load_data(folder, split) == (EXAMPLES, LABELS)


@pytest.mark.parametrize("header, fields", [
    (["sentence1", "sentence2", "label"], ("premise", "hypothesis")),
    (["premise", "hypothesis", "label"], ("premise", "hypothesis")),
    (["idx", "question", "sentence", "label"], ("question", "sentence")),
    (["question", "passage", "label"], ("question", "passage")),
    (["title", "description", "label"], ("title", "description")),
])
def test_folder_pair_tasks(tmp_path, header, fields):
    rows = [[*(["7"] if header[0] == "idx" else []), "a b", "c d", "yes"], [*(["8"] if header[0] == "idx" else []),
                                                                             "e", "f", "no"]]
    folder = _task_folder(tmp_path, "pairs", header, rows, suffix=".jsonl")
    examples, labels = readers.load_data(folder, "dev")
    assert labels == ["yes", "no"]
    assert examples[0] == dict(zip(fields, ("a b", "c d")))


@pytest.mark.parametrize("label_column", ["target", "class", "y", "labels"])
def test_folder_label_column_inferred(tmp_path, label_column):
    folder = _task_folder(tmp_path, "topics", ["id", "text", label_column], [[str(i), t, y] for i, (t, y) in
                                                                              enumerate(ROWS)], suffix=".csv")
    assert readers.load_data(folder, "train") == (EXAMPLES, LABELS)


def test_folder_unlabelled_test_split(tmp_path):
    folder = _task_folder(tmp_path, "topics", ["text", "label"], [list(r) for r in ROWS], splits=("train",))
    write_csv(folder / "test.tsv", ["id", "text"], [[str(i), t] for i, (t, _) in enumerate(ROWS)], delimiter="\t")
    assert readers.load_data(folder, "test") == (EXAMPLES, None)


def test_folder_dev_split_aliases_and_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "reviews" / "x"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"review": [t for t, _ in ROWS], "label": LABELS}), folder / "validation.parquet")
    assert readers.load_data(folder, "dev") == (EXAMPLES, LABELS)


def test_folder_ambiguous_columns_is_one_line_naming_the_option(tmp_path):
    folder = _task_folder(tmp_path, "reviews", ["review", "stars", "label"], [[t, "5", y] for t, y in ROWS])
    with pytest.raises(DataError) as info:
        readers.load_data(folder, "dev")
    message = one_line(info)
    assert "cannot tell which columns are the text" in message
    assert "review, stars, label" in message and "--column" in message
    # the option settles it
    assert readers.load_data(folder, "dev", columns={"text": "review"}) == (EXAMPLES, LABELS)


def test_folder_ambiguous_label_column(tmp_path):
    folder = _task_folder(tmp_path, "reviews", ["text", "target", "class"], [[t, y, y] for t, y in ROWS])
    with pytest.raises(DataError) as info:
        readers.load_data(folder, "dev")
    assert "target, class" in one_line(info) and "--label-column" in str(info.value)
    assert readers.load_data(folder, "dev", label_column="class") == (EXAMPLES, LABELS)


def test_folder_without_the_split(tmp_path):
    folder = _task_folder(tmp_path, "reviews", ["text", "label"], [list(r) for r in ROWS], splits=("train",))
    with pytest.raises(DataError) as info:
        readers.load_data(folder, "test")
    message = one_line(info)
    assert "split 'test'" in message and "train.tsv" in message and ".parquet" in message


def test_folder_with_two_files_for_a_split(tmp_path):
    folder = _task_folder(tmp_path, "reviews", ["text", "label"], [list(r) for r in ROWS], splits=("train",))
    write_csv(folder / "train.csv", ["text", "label"], [list(r) for r in ROWS])
    with pytest.raises(DataError, match=r"several files for split 'train' \(train.tsv, train.csv\)"):
        readers.load_data(folder, "train")


# -- head ------------------------------------------------------------------------------------------------------------

def test_head_keeps_the_first_rows_in_file_order(tmp_path):
    path = write(tmp_path / "d.jsonl", "".join(json.dumps(r) + "\n" for r in RECORDS))
    assert readers.load_data(path, head=3) == (EXAMPLES[:3], LABELS[:3])
    assert readers.read_examples(path, head=0) == ([], [])
    with readers.head_rows(2):
        assert readers.load_data(path) == (EXAMPLES[:2], LABELS[:2])
        assert readers.read_table(path)[2] == RECORDS[:2]
        assert readers.load_data(path, head=4)[1] == LABELS[:4]  # an explicit head wins
    assert len(readers.load_data(path)[0]) == len(ROWS)


def test_head_stops_before_a_bad_row(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n')
    assert readers.load_data(path, head=1) == ([{"text": "a"}], ["x"])


# -- sampling and writing -----------------------------------------------------------------------------------------

def test_k_shot_indices_match_sample_k_shot():
    labels = [y for _ in range(5) for y in LABELS]
    examples = [{"text": str(i)} for i in range(len(labels))]
    picked = sampling.k_shot_indices(labels, 3, 13)
    assert sampling.sample_k_shot(examples, labels, 3, 13) == ([examples[i] for i in picked], [labels[i] for i in picked])
    assert picked == sorted(picked) and Counter(labels[i] for i in picked) == {"positive": 3, "negative": 3}
    assert picked != sampling.k_shot_indices(labels, 3, 21)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_write_table_round_trips(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    rows = [{"text": 'a "quoted"\ttab', "label": "positive", "n": 1}, {"text": "line\nbreak", "label": "negative",
                                                                       "n": 2}]
    path = T.write_table(tmp_path / f"out{suffix}", ["text", "label", "n"], rows)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]  # no temporary file left
    table = T.read_file(path)
    assert table.header == ["text", "label", "n"]
    expected = [{**r, "n": str(r["n"])} for r in rows] if suffix in (".csv", ".tsv") else rows
    assert table.rows == expected


def test_write_table_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="cannot tell the format to write"):
        T.write_table(tmp_path / "out.txt", ["a"], [{"a": 1}])
    assert list(tmp_path.iterdir()) == []


# -- the command line -------------------------------------------------------------------------------------------

def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(result: tuple[int, str, str], *fragments: str) -> str:
    code, out, err = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("promptlearn: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def figures(out: str) -> str:
    """evaluate's printout without its timing lines."""
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith(("time", "speed", "load")) and "examples/s" not in line)


@pytest.fixture
def evaluate(tiny_bert_dir):
    return ["evaluate", "--model", str(tiny_bert_dir), "--template", "sst2/it_was", "--verbalizer", "sst2"]


def test_cli_evaluate_json_array_file(capsys, tmp_path, evaluate):
    """Today: 'dev.json, line 1: bad JSON (Expecting property name ...)' for a pretty-printed JSON object, and the
    same figures as the CSV of the same rows are expected for each JSON shape."""
    csv_path = write_csv(tmp_path / "dev.csv", ["text", "label"], [list(r) for r in ROWS])
    code, expected, err = run(capsys, *evaluate, "--data", csv_path)
    assert code == 0, err
    assert f"examples: {len(ROWS)}" in expected
    for name, text in [("array.json", json.dumps(RECORDS, indent=2)),
                       ("columns.json", json.dumps({"text": [t for t, _ in ROWS], "label": LABELS}, indent=2))]:
        code, out, err = run(capsys, *evaluate, "--data", write(tmp_path / name, text))
        assert code == 0, err
        assert figures(out) == figures(expected)


def test_cli_evaluate_folder_of_an_unknown_task(capsys, tmp_path, evaluate):
    folder = _task_folder(tmp_path, "my-reviews", ["idx", "sentence", "label"],
                          [[str(i), t, y] for i, (t, y) in enumerate(ROWS)])
    code, out, err = run(capsys, *evaluate, "--data", folder, "--split", "dev")
    assert code == 0, err
    assert f"examples: {len(ROWS)}" in out


def test_cli_evaluate_folder_with_ambiguous_columns(capsys, tmp_path, evaluate):
    folder = _task_folder(tmp_path, "my-reviews", ["review", "summary", "label"], [[t, t, y] for t, y in ROWS])
    assert_user_error(run(capsys, *evaluate, "--data", folder), "review, summary, label", "--column")
    code, out, err = run(capsys, *evaluate, "--data", folder, "--column", "text=review")
    assert code == 0, err


def test_cli_evaluate_head(capsys, tmp_path, evaluate):
    """--head N: the first N rows, in file order (not --limit's seeded draw)."""
    full = write_csv(tmp_path / "dev.csv", ["text", "label"], [list(r) for r in ROWS])
    first = write_csv(tmp_path / "first.csv", ["text", "label"], [list(r) for r in ROWS[:3]])
    code, out, err = run(capsys, *evaluate, "--data", full, "--head", 3)
    assert code == 0, err
    assert "examples: 3" in out
    code, expected, err = run(capsys, *evaluate, "--data", first)
    assert figures(out) == figures(expected)


def test_cli_classify_head(capsys, tmp_path, tiny_bert_dir):
    path = write(tmp_path / "in.json", json.dumps([{"text": t} for t, _ in ROWS]))
    code, out, err = run(capsys, "classify", "--model", tiny_bert_dir, "--template", "sst2/it_was", "--verbalizer",
                         "sst2", "--input", path, "--head", 2)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out, newline=""), delimiter="\t"))
    assert [r["text"] for r in rows] == [t for t, _ in ROWS[:2]]


@pytest.mark.parametrize("command", ["classify", "evaluate", "train", "sample"])
def test_head_option_is_offered(capsys, command):
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--head N" in capsys.readouterr().out


def test_cli_bad_json_is_one_line(capsys, tmp_path, evaluate):
    path = write(tmp_path / "dev.json", '{\n  "text": "good",\n  oops\n}\n')
    assert_user_error(run(capsys, *evaluate, "--data", path), "read as a JSON object", "by the .json suffix",
                      ".jsonl")


def test_cli_evaluate_hub_dataset(capsys, monkeypatch, evaluate, hf_dataset):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, split=None: hf_dataset)
    code, out, err = run(capsys, *evaluate, "--data", "hf:someone/reviews::test")
    assert code == 0, err
    assert f"examples: {len(ROWS)}" in out


def test_cli_parquet_without_pyarrow(capsys, tmp_path, evaluate, monkeypatch):
    path = tmp_path / "dev.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert_user_error(run(capsys, *evaluate, "--data", path), "pip install pyarrow")


# -- promptlearn sample ------------------------------------------------------------------------------------------------

def _labelled_rows(n_per_class: int = 5) -> list[dict]:
    return [{"id": i, "review": f"text {i}", "stars": ["1", "3", "5"][i % 3], "score": i / 10}
            for i in range(3 * n_per_class)]


@pytest.mark.parametrize("out_suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_cli_sample_k_per_class_keeps_every_column(capsys, tmp_path, out_suffix):
    if out_suffix == ".parquet":
        pytest.importorskip("pyarrow")
    rows = _labelled_rows()
    source = write(tmp_path / "all.json", json.dumps(rows))
    output = tmp_path / f"k2{out_suffix}"
    code, out, err = run(capsys, "sample", "--k", 2, "--seed", 13, "--input", source, "--label-column", "stars",
                         "--output", output)
    assert code == 0, err
    assert "sampled 6 of 15 rows" in err
    picked = sampling.k_shot_indices([r["stars"] for r in rows], 2, 13)
    table = T.read_file(output)
    assert table.header == ["id", "review", "stars", "score"]
    expected = [rows[i] for i in picked]
    if out_suffix in (".csv", ".tsv"):
        expected = [{k: str(v) for k, v in r.items()} for r in expected]
    assert table.rows == expected
    # the same seed draws the same rows; another seed others
    run(capsys, "sample", "--k", 2, "--seed", 13, "--input", source, "--label-column", "stars", "--output",
        tmp_path / f"again{out_suffix}")
    assert T.read_file(tmp_path / f"again{out_suffix}").rows == table.rows
    run(capsys, "sample", "--k", 2, "--seed", 14, "--input", source, "--label-column", "stars", "--output",
        tmp_path / f"other{out_suffix}")
    assert T.read_file(tmp_path / f"other{out_suffix}").rows != table.rows


def test_cli_sample_infers_the_label_column_and_may_replace_its_input(capsys, tmp_path):
    rows = [{"text": f"t{i}", "target": "ab"[i % 2]} for i in range(10)]
    path = write(tmp_path / "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run(capsys, "sample", "--k", 3, "--seed", 1, "--input", path, "--output", path)
    assert code == 0, err
    written = T.read_file(path).rows
    assert Counter(r["target"] for r in written) == {"a": 3, "b": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["d.jsonl"]


def test_cli_sample_from_a_saved_dataset(capsys, tmp_path, hf_dataset):
    folder = tmp_path / "saved"
    hf_dataset.save_to_disk(str(folder))
    code, out, err = run(capsys, "sample", "--k", 1, "--seed", 0, "--input", folder, "--output",
                         tmp_path / "k1.jsonl")
    assert code == 0, err
    written = T.read_file(tmp_path / "k1.jsonl").rows
    assert len(written) == 2 and set(written[0]) == {"idx", "sentence", "label"}
    assert sorted(r["label"] for r in written) == [0, 1]  # ClassLabel values kept as stored


def test_cli_sample_head(capsys, tmp_path):
    rows = _labelled_rows()
    source = write(tmp_path / "all.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run(capsys, "sample", "--k", 1, "--input", source, "--label-column", "stars", "--head", 6,
                         "--output", tmp_path / "k.jsonl")
    assert code == 0, err
    assert all(r["id"] < 6 for r in T.read_file(tmp_path / "k.jsonl").rows)


@pytest.mark.parametrize("case", ["too few", "no label column", "bad output suffix", "missing input", "k zero"])
def test_cli_sample_errors(capsys, tmp_path, case):
    source = write(tmp_path / "all.json", json.dumps(_labelled_rows(2)))
    argv = ["sample", "--k", 3, "--input", source, "--label-column", "stars", "--output", tmp_path / "out.csv"]
    if case == "too few":
        assert_user_error(run(capsys, *argv), "fewer than --k 3", "--allow-fewer")
        code, out, err = run(capsys, *argv, "--allow-fewer")
        assert code == 0, err and len(T.read_file(tmp_path / "out.csv")) == 6
        return
    if case == "no label column":
        argv[argv.index("stars")] = "nope"
        assert_user_error(run(capsys, *argv), "'nope'", "--label-column")
    elif case == "bad output suffix":
        argv[-1] = tmp_path / "out.txt"
        assert_user_error(run(capsys, *argv), "--output", ".parquet")
    elif case == "missing input":
        argv[argv.index(source)] = tmp_path / "nope.csv"
        assert_user_error(run(capsys, *argv), "not found")
    else:
        argv[2] = 0
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in argv])
        assert info.value.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.json"]
