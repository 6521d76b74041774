"""Tests for promptlearn.io.tasks, readers and sampling on the real shared data, and for the shipped prompt files."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from promptlearn.io import readers, sampling, tasks
from promptlearn.core.errors import ChecksumError, DataError

try:
    ROOT = tasks.shared_data_root()
except DataError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"shared data not found: {exc}", allow_module_level=True)

REPO = Path(__file__).resolve().parent.parent
KSHOT = ROOT / "lm-bff" / "k-shot"

# task folder -> (number of classes, test-set size)
LMBFF = {
    "SST-2": (2, 872),
    "sst-5": (5, 2210),
    "mr": (2, 2000),
    "cr": (2, 2000),
    "subj": (2, 2000),
    "trec": (6, 500),
    # 1,043 rows (GLUE CoLA dev): `wc -l` says 1042 because the file lacks a final newline
    "CoLA": (2, 1043),
    "RTE": (2, 277),
}


# ------------------------------------------------------------------ tasks and the data root


def test_task_id_normalises_names():
    assert tasks.task_id("SST-2") == "sst2"
    assert tasks.task_id("sst-5") == "sst5"
    assert tasks.task_id("ag_news") == "agnews"
    assert tasks.task_id("STS-B") == "stsb"
    assert tasks.task_id("CoLA") == "cola"
    assert tasks.task_id("BoolQ") == "boolq"
    assert set(tasks.TASK_LABELS) == {
        "sst2", "sst5", "mr", "cr", "subj", "trec", "cola", "rte", "mnli", "snli", "stsb", "agnews", "boolq", "cb"
    }
    with pytest.raises(DataError, match="known tasks"):
        tasks.task_id("nonsense")


def test_shared_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTLEARN_DATA", str(tmp_path))
    assert tasks.shared_data_root() == tmp_path
    monkeypatch.setenv("PROMPTLEARN_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="PROMPTLEARN_DATA"):
        tasks.shared_data_root()


def test_shared_data_root_not_found(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMPTLEARN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tasks, "__file__", str(tmp_path / "pkg" / "promptlearn" / "io" / "tasks.py"))
    with pytest.raises(DataError, match="set PROMPTLEARN_DATA"):
        tasks.shared_data_root()


# ------------------------------------------------------------------ LM-BFF k-shot folders


@pytest.mark.parametrize("task", sorted(LMBFF))
def test_lmbff_seed13_splits(task):
    n_classes, n_test = LMBFF[task]
    names = tasks.TASK_LABELS[tasks.task_id(task)]
    assert len(names) == n_classes
    for split in ("train", "dev"):
        ex, lab = tasks.load_lmbff(KSHOT / task / "16-13", split)
        assert Counter(lab) == {c: 16 for c in names}
        assert len(ex) == len(lab) == 16 * n_classes
    ex, lab = tasks.load_lmbff_task(task, "test", seed=13)
    assert len(ex) == len(lab) == n_test
    assert set(lab) <= set(names)
    assert set(lab) == set(names)  # every class occurs in the test set
    fields = {"text"} if tasks.task_id(task) != "rte" else {"premise", "hypothesis"}
    assert all(set(e) == fields and all(isinstance(v, str) for v in e.values()) for e in ex)


@pytest.mark.parametrize("task", ["MNLI", "SNLI"])
def test_lmbff_nli_no_test(task):
    for split in ("train", "dev"):
        ex, lab = tasks.load_lmbff_task(task, split)
        assert Counter(lab) == {"contradiction": 16, "entailment": 16, "neutral": 16}
        assert set(ex[0]) == {"premise", "hypothesis"} and ex[0]["premise"] and ex[0]["hypothesis"]
    with pytest.raises(DataError, match=r"nli/(mnli_dev_matched|snli_dev)\.jsonl") as info:
        tasks.load_lmbff_task(task, "test")
    assert "train" in str(info.value)  # lists the splits that exist


def test_lmbff_text_values():
    ex, lab = tasks.load_lmbff_task("SST-2", "test")
    assert ex[0] == {"text": "one long string of cliches ."} and lab[0] == "negative"
    ex, lab = tasks.load_lmbff_task("trec", "test")
    assert ex[0]["text"] == "How far is it from Denver to Aspen ?" and lab[0] == "number"
    ex, lab = tasks.load_lmbff_task("CoLA", "test")
    assert ex[-1]["text"] == "John talked to Bill about himself." and lab[-1] == "acceptable"
    ex, lab = tasks.load_lmbff_task("RTE", "test")  # RTE keeps quotes literally (QUOTE_NONE)
    assert any(e["premise"].count('"') >= 2 for e in ex)


def test_lmbff_trec_mapping():
    """LM-BFF's TREC ids 0..5 are DESC, ENTY, ABBR, HUM, LOC, NUM (ABBR: 9 test questions)."""
    ex, lab = tasks.load_lmbff_task("trec", "test")
    counts = Counter(lab)
    assert counts == {"description": 138, "entity": 94, "abbreviation": 9, "human": 65, "location": 81, "number": 113}
    abbr = [e["text"] for e, y in zip(ex, lab) if y == "abbreviation"]
    assert "What does USPS stand for ?" in abbr


def test_lmbff_stsb_scores():
    ex, lab = tasks.load_lmbff_task("STS-B", "test")
    assert len(ex) == 1500 and set(ex[0]) == {"sentence1", "sentence2"}
    assert lab[0] == "5.000" and all(0.0 <= float(s) <= 5.0 for s in lab)


def test_lmbff_other_seed_and_aliases():
    a = tasks.load_lmbff_task("sst2", "train", seed=21)
    b = readers.load_data("SST-2:21", "train")
    c = readers.load_data(str(KSHOT / "SST-2" / "16-21"), "train")
    assert a == b == c and len(a[0]) == 32
    assert tasks.load_lmbff_task("MNLI", "dev") == tasks.load_lmbff_task("MNLI", "dev_matched")


def test_lmbff_missing_split_and_folder(tmp_path):
    with pytest.raises(DataError, match="splits there: dev, test, train"):
        tasks.load_lmbff(KSHOT / "SST-2" / "16-13", "validation")
    with pytest.raises(DataError, match="available: 16-100"):
        tasks.load_lmbff_task("SST-2", "test", seed=7)
    with pytest.raises(DataError, match="parent folder"):
        tasks.load_lmbff(tmp_path, "test")


def _copy_split(tmp_path, task="SST-2", seed_dir="16-13"):
    dst = tmp_path / "k-shot" / task / seed_dir
    shutil.copytree(KSHOT / task / seed_dir, dst)
    shutil.copy(KSHOT / "checksum", tmp_path / "k-shot" / "checksum")
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def test_checksum_mismatch(tmp_path):
    folder = _copy_split(tmp_path)
    assert len(tasks.load_lmbff(folder, "train")[0]) == 32  # the intact copy verifies
    f = folder / "train.tsv"
    raw = bytearray(f.read_bytes())
    i = raw.index(b"nothing happens")
    raw[i] = ord("N")
    f.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError) as info:
        tasks.load_lmbff(folder, "train")
    msg = str(info.value)
    assert "train.tsv" in msg and "fe166f3b9e9952cb729a8d2c3bd682ae" in msg
    assert re.search(r"got [0-9a-f]{32}", msg)
    ex, _ = tasks.load_lmbff(folder, "train", verify=False)
    assert ex[0]["text"].startswith("Nothing happens")
    assert len(tasks.load_lmbff(folder, "dev")[0]) == 32  # other files still verify


def test_malformed_lmbff_file(tmp_path):
    folder = _copy_split(tmp_path)
    f = folder / "dev.tsv"
    f.write_text(f.read_text() + "an extra\tcolumn\there\n")
    with pytest.raises(DataError, match=r"dev.tsv, line 34: 3 columns"):
        tasks.load_lmbff(folder, "dev", verify=False)
    (tmp_path / "k-shot" / "checksum").unlink()  # no checksum file: loads, with a warning
    g = folder / "test.tsv"
    assert len(tasks.load_lmbff(folder, "test")[0]) == 872
    g.write_text(g.read_text().replace("\t0\n", "\t7\n", 1))
    with pytest.raises(DataError, match="label '7'"):
        tasks.load_lmbff(folder, "test")


# ------------------------------------------------------------------ other data sets


def test_ag_news():
    ex, lab = tasks.load_ag_news("test")
    assert len(ex) == 7600 and Counter(lab) == {c: 1900 for c in tasks.TASK_LABELS["agnews"]}
    assert ex[0]["title"] == "Fears for T N pension after talks" and lab[0] == "business"
    assert all("\\" not in e["title"] + e["description"] for e in ex)
    assert "A second team of rocketeers" in ex[1]["description"]
    ex, lab = tasks.load_ag_news("train_pool")
    assert len(ex) == 8000 and Counter(lab) == {c: 2000 for c in tasks.TASK_LABELS["agnews"]}
    assert all(e["title"] == "" and e["description"] for e in ex)
    with pytest.raises(DataError, match="test, train_pool"):
        tasks.load_ag_news("train")


def test_fewglue():
    ex, lab = tasks.load_fewglue("BoolQ", "train")
    assert len(ex) == 32 and set(ex[0]) == {"question", "passage"}
    assert Counter(lab) == {"true": 18, "false": 14}
    assert len(tasks.load_fewglue("boolq", "val")[0]) == 3270
    ex, lab = tasks.load_fewglue("CB", "dev32")
    assert len(ex) == 32 and set(ex[0]) == {"premise", "hypothesis"}
    assert set(lab) == set(tasks.TASK_LABELS["cb"])
    assert Counter(tasks.load_fewglue("cb", "val")[1]) == {"contradiction": 28, "entailment": 23, "neutral": 5}
    with pytest.raises(DataError, match="dev32, train, val"):
        tasks.load_fewglue("boolq", "unlabeled")


def test_fewglue_unlabeled(tmp_path):
    d = tmp_path / "superglue" / "CB"
    d.mkdir(parents=True)
    (d / "unlabeled.jsonl").write_text('{"premise": "A.", "hypothesis": "B", "idx": 0}\n')
    ex, lab = tasks.load_fewglue("cb", "unlabeled", root=tmp_path)
    assert ex == [{"premise": "A.", "hypothesis": "B"}] and lab is None


def test_nli_files():
    ex, lab = tasks.load_nli("mnli_dev_matched")
    assert len(ex) == 9815 and set(lab) == set(tasks.TASK_LABELS["mnli"])
    ex, lab = tasks.load_nli("snli_dev.jsonl")
    assert len(ex) == 9842 and set(ex[0]) == {"premise", "hypothesis"}
    ex, lab = tasks.load_nli("snli_test")
    assert len(ex) == 9824
    assert Counter(lab) == {"entailment": 3368, "neutral": 3219, "contradiction": 3237}
    # CSV-style quoting in snli_test.tsv is undone
    assert any(e["premise"].endswith('says "HI-POINTE."') for e in ex)
    with pytest.raises(DataError, match="known"):
        tasks.load_nli("mnli_test")


def test_lmbff_full():
    ex, lab = tasks.load_lmbff_full("SST-2", "train")
    assert len(ex) == 6227 and set(lab) == {"negative", "positive"}
    ex, lab = tasks.load_lmbff_full("rte", "dev")
    assert len(ex) == 249 and set(ex[0]) == {"premise", "hypothesis"}


# ------------------------------------------------------------------ generic reader


def test_read_csv_mapping_and_empty_cells(tmp_path):
    p = tmp_path / "reviews.csv"
    p.write_text('review,stars,label\n"Great, really",5,pos\n,1,neg\n')
    ex, lab = readers.read_examples(p)
    assert ex == [{"review": "Great, really", "stars": "5"}, {"review": "", "stars": "1"}]
    assert lab == ["pos", "neg"]
    ex, lab = readers.read_examples(p, columns={"text": "review"})
    assert ex == [{"text": "Great, really"}, {"text": ""}]
    ex, lab = readers.read_examples(p, columns={"text": "review"}, label_column="stars")
    assert lab == ["5", "1"]
    ex, lab = readers.read_examples(p, label_column=None)
    assert lab is None and ex[0]["label"] == "pos"
    with pytest.raises(DataError, match=r"no column\(s\) \['body'\].*review, stars, label"):
        readers.read_examples(p, columns={"text": "body"})


def test_read_label_column_absent(tmp_path):
    p = tmp_path / "u.tsv"
    p.write_text("text\nfirst\nsecond\n")
    assert readers.read_examples(p) == ([{"text": "first"}, {"text": "second"}], None)
    with pytest.raises(DataError, match=r"u.tsv has no label column 'label'; columns: text"):
        readers.read_examples(p, label_column="label")


def test_read_tsv_quoting(tmp_path):
    glue = tmp_path / "glue.tsv"  # literal quotes, GLUE style
    glue.write_text('sentence\tlabel\n"bad" is the word , he said\t0\nfine\t1\n')
    assert readers.read_examples(glue)[0][0]["sentence"] == '"bad" is the word , he said'
    quoted = tmp_path / "quoted.tsv"  # CSV-style quoting
    quoted.write_text('sentence\tlabel\n"a ""quoted"" word"\t0\nplain\t1\n')
    assert readers.read_examples(quoted)[0][0]["sentence"] == 'a "quoted" word'
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("a\tb\n1\t2\n3\n")
    with pytest.raises(DataError, match="ragged.tsv"):
        readers.read_examples(ragged)


def test_read_jsonl_and_errors(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a", "label": "x", "n": 3}\n\n{"text": null, "label": "y", "n": true}\n')
    ex, lab = readers.read_examples(p)
    assert ex == [{"text": "a", "n": "3"}, {"text": "", "n": "true"}] and lab == ["x", "y"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"text": "b"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 3: bad JSON"):
        readers.read_examples(bad)
    nolabel = tmp_path / "partial.jsonl"
    nolabel.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"line 2: no 'label'"):
        readers.read_examples(nolabel)


def test_read_missing_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="not found: .*nope.csv"):
        readers.read_examples(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not found: .*nope.csv"):
        readers.load_data(str(tmp_path / "nope.csv"))
    (tmp_path / "x.txt").write_text("text\nhello\n")
    with pytest.raises(DataError, match="extension"):
        readers.read_examples(tmp_path / "x.txt")
    assert readers.read_examples(tmp_path / "x.txt", fmt="csv") == ([{"text": "hello"}], None)


def test_read_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "hi", "label": "pos"}\n'))
    assert readers.read_examples("-") == ([{"text": "hi"}], ["pos"])
    monkeypatch.setattr("sys.stdin", io.StringIO("text\tlabel\nhi\tpos\n"))
    assert readers.load_data("-") == ([{"text": "hi"}], ["pos"])
    monkeypatch.setattr("sys.stdin", io.StringIO("review,label\nhi,pos\n"))
    assert readers.read_examples("-", fmt="csv", columns={"text": "review"}) == ([{"text": "hi"}], ["pos"])


def test_load_data_dispatch():
    assert len(readers.load_data(ROOT / "ag_news", "test")[0]) == 7600
    assert len(readers.load_data(ROOT / "superglue" / "CB", "val")[0]) == 56
    assert readers.load_data(ROOT / "nli" / "snli_test.tsv")[1][0] == "neutral"
    assert len(readers.load_data("trec", "train")[0]) == 96
    ex, lab = readers.load_data(ROOT / "glue-sst2" / "dev.tsv")  # a plain file: raw columns
    assert len(ex) == 872 and set(ex[0]) == {"sentence"} and set(lab) == {"0", "1"}
    with pytest.raises(DataError, match="known task name"):
        readers.load_data("no-such-task")


# ------------------------------------------------------------------ sampling


def test_sample_k_shot():
    ex, lab = tasks.load_lmbff_task("trec", "test")
    a = sampling.sample_k_shot(ex, lab, 4, seed=1)
    assert a == sampling.sample_k_shot(ex, lab, 4, seed=1)
    assert a != sampling.sample_k_shot(ex, lab, 4, seed=2)
    assert Counter(a[1]) == {c: 4 for c in tasks.TASK_LABELS["trec"]}
    order = [ex.index(e) for e in a[0]]
    assert order == sorted(order)  # original order kept
    with pytest.raises(DataError, match="abbreviation"):
        sampling.sample_k_shot(ex, lab, 10, seed=1)
    b = sampling.sample_k_shot(ex, lab, 10, seed=1, strict=False)
    assert Counter(b[1])["abbreviation"] == 9 and Counter(b[1])["number"] == 10
    with pytest.raises(DataError):
        sampling.sample_k_shot(ex, None, 4, seed=1)


def test_subsample():
    ex, lab = tasks.load_lmbff_task("SST-2", "test")
    a = sampling.subsample(ex, lab, 100, seed=0)
    assert len(a[0]) == len(a[1]) == 100 and a == sampling.subsample(ex, lab, 100, seed=0)
    assert a != sampling.subsample(ex, lab, 100, seed=1)
    small = sampling.subsample(ex, lab, 50, seed=0)  # nested: a prefix of the same permutation
    assert all(e in a[0] for e in small[0])
    assert sampling.subsample(ex, lab, 10_000, seed=0) == (ex, lab)
    assert sampling.subsample(ex, None, 5, seed=0)[1] is None


# ------------------------------------------------------------------ shipped prompt files

TEMPLATES = sorted((REPO / "templates").glob("*/*.j2"))
VERBALIZERS = sorted((REPO / "verbalizers").glob("*.json"))
TASK_DIRS = {"sst2", "sst5", "mr", "cr", "subj", "trec", "cola", "mnli", "snli", "rte", "agnews", "boolq", "cb"}


def test_shipped_files_exist():
    assert {p.parent.name for p in TEMPLATES} == TASK_DIRS
    assert {p.stem.split("_")[0] for p in VERBALIZERS} == TASK_DIRS
    assert (REPO / "templates" / "sst2" / "it_was.j2").read_text().rstrip("\n").endswith(
        "{{ text }} It was [MASK]."
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_template(path):
    jinja2 = pytest.importorskip("jinja2")
    import jinja2.meta
    from jinja2.sandbox import SandboxedEnvironment

    source = path.read_text(encoding="utf-8").rstrip("\n")
    first, _, body = source.partition("\n")
    assert re.fullmatch(r"\{#.*Fields: [a-z_, ]+ ?#\}", first), f"{path}: first line must be a Jinja comment"
    assert source.count("[MASK]") == 1, f"{path}: exactly one [MASK] in the file"
    declared = {f.strip() for f in re.search(r"Fields: ([a-z_, ]+?) ?#\}", first).group(1).split(",")}
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    env.filters["rstrip_punct"] = lambda v: str(v).rstrip(" .?!")
    env.filters["lcfirst"] = lambda v: str(v)[:1].lower() + str(v)[1:]
    used = jinja2.meta.find_undeclared_variables(env.parse(body))
    assert used == declared, f"{path}: comment says {declared}, template uses {used}"
    # the fields are those the loader of that task produces
    task = path.parent.name
    sample = {
        "agnews": lambda: tasks.load_ag_news("test"),
        "boolq": lambda: tasks.load_fewglue("boolq", "dev32"),
        "cb": lambda: tasks.load_fewglue("cb", "dev32"),
    }.get(task, lambda: tasks.load_lmbff_task(task, "train"))()[0][0]
    assert used <= set(sample), f"{path}: needs {used}, {task} examples have {set(sample)}"
    rendered = env.from_string(body).render(**sample)
    assert rendered.count("[MASK]") == 1


def _render(name, **example):
    jinja2 = pytest.importorskip("jinja2")
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["rstrip_punct"] = lambda v: str(v).rstrip(" .?!")
    env.filters["lcfirst"] = lambda v: str(v)[:1].lower() + str(v)[1:]
    return env.from_string((REPO / "templates" / f"{name}.j2").read_text().rstrip("\n")).render(**example)


def test_shipped_template_texts():
    assert _render("sst2/it_was", text="A gem .") == "A gem . It was [MASK]."
    assert _render("trec/mask_colon", text="Who ?") == "[MASK]: Who ?"
    pair = {"premise": "A man sleeps.", "hypothesis": "He is tired."}
    assert _render("mnli/lmbff", **pair) == "A man sleeps? [MASK], he is tired."
    assert _render("rte/lmbff", **pair) == _render("snli/lmbff", **pair)
    assert _render("cb/pet1", **pair) == "He is tired? [MASK], A man sleeps."
    assert _render("sst2/review", text="A gem .") == "Review: A gem .\nSentiment: [MASK]"
    assert _render("agnews/pet4", title="T", description="D") == "[ Category: [MASK] ] T D"


def test_causal_variant_per_task():
    """Every task has a template whose [MASK] comes last (causal LMs drop text after it)."""
    last = {p.parent.name for p in TEMPLATES if p.read_text().rstrip("\n").endswith("[MASK]")}
    assert last == TASK_DIRS


@pytest.mark.parametrize("path", VERBALIZERS, ids=lambda p: p.name)
def test_shipped_verbalizer(path):
    mapping = json.loads(path.read_text(encoding="utf-8"))
    task = path.stem.split("_")[0]
    assert list(mapping) == tasks.TASK_LABELS[task], f"{path}: classes must be {tasks.TASK_LABELS[task]} in order"
    for cls, words in mapping.items():
        assert isinstance(words, list) and words, f"{path}: {cls!r} has no words"
        for w in words:
            assert isinstance(w, str) and w.strip() == w and w and not w.startswith(("Ġ", "▁")), (path, w)


def test_readme_tables_list_every_file():
    t_readme = (REPO / "templates" / "README.md").read_text()
    v_readme = (REPO / "verbalizers" / "README.md").read_text()
    for p in TEMPLATES:
        assert f"{p.parent.name}/{p.name}" in t_readme, p
    for p in VERBALIZERS:
        assert p.name in v_readme and p.name in t_readme, p
