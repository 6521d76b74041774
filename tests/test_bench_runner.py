"""The benchmark runner (benchmarks/run.py) on tiny local models and a tiny synthetic LM-BFF data tree:
the table is generated, a checksum mismatch stops the run naming the file, finished cells are not
recomputed, and two runs give byte-identical JSON apart from the ``timing`` key."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForMaskedLM

from benchmarks import report, run
from promptlearn.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
OBJECT_REPR = re.compile(r" at 0x[0-9a-f]+>")

POSITIVE = ["the movie was great", "a good film", "great acting and fun", "the story is good", "i loved the music",
            "an excellent book", "the food was nice", "a perfect ending", "really funny and happy", "best game"]
NEGATIVE = ["the movie was bad", "an awful film", "boring acting and dull", "the story is poor", "i hated the music",
            "the worst book", "the food was awful", "a sad ending", "really slow and dull", "worst game"]


def _rows(n_per_class: int, offset: int) -> list[tuple[str, int]]:
    rows = []
    for i in range(n_per_class):
        rows.append((f"{NEGATIVE[(i + offset) % len(NEGATIVE)]} {i}", 0))
        rows.append((f"{POSITIVE[(i + offset) % len(POSITIVE)]} {i}", 1))
    return rows


def build_data(root: Path, seeds=(13, 21)) -> Path:
    """``root/lm-bff/k-shot/{SST-2,mr}/16-<seed>/`` (SST-2: TSV with a header; MR: CSV without) and the
    ``checksum`` file; train and dev hold 4 examples per class, test 10."""
    kshot = root / "lm-bff" / "k-shot"
    sums = []
    for task, ext in (("SST-2", "tsv"), ("mr", "csv")):
        for seed in seeds:
            folder = kshot / task / f"16-{seed}"
            folder.mkdir(parents=True)
            for split, n, offset in (("train", 4, seed), ("dev", 4, seed + 5), ("test", 5, 0)):
                rows = _rows(n, offset)
                if ext == "tsv":
                    text = "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows)
                else:
                    text = "".join(f"{y},{s}\n" for s, y in rows)
                path = folder / f"{split}.{ext}"
                path.write_text(text, encoding="utf-8")
                sums.append(f"{hashlib.md5(text.encode()).hexdigest()}  {task}/16-{seed}/{split}.{ext}")
    (kshot / "checksum").write_text("\n".join(sums) + "\n", encoding="utf-8")
    return root


def write_config(path: Path, data_root: Path, model: Path, *, name: str = "tiny", k="[2, 4]") -> Path:
    path.write_text(f"""
name = "{name}"
description = "Tiny synthetic check."
model = "{model}"
tasks = ["sst2", "mr"]
k = {k}
seeds = [13, 21]
test_limit = 8
subset_seed = 0
data_root = "{data_root}"

[[methods]]
name = "zero_shot"
kind = "zero_shot"

[[methods]]
name = "zero_shot_cal"
kind = "zero_shot"
calibrate = true

[[methods]]
name = "pet"
kind = "prompt"
learning_rate = 1e-3
max_steps = 2
train_batch_size = 4
eval_every = 1

[[methods]]
name = "tfidf"
kind = "tfidf"

[[methods]]
name = "probe"
kind = "probe"
pooling = "mean"

[[methods]]
name = "setfit"
kind = "setfit"
""", encoding="utf-8")
    return path


def _without_timing(text: str) -> str:
    stripped = re.sub(r'\n  "timing": \{\n.*?\n  \},?', "", text, flags=re.S)
    assert stripped != text and '"timing"' not in stripped
    return stripped


@pytest.fixture(scope="module")
def bench(tmp_path_factory, tiny_bert_dir):
    """One full run of the tiny config (setfit made unimportable: its cells must be skipped, not crash)."""
    base = tmp_path_factory.mktemp("bench")
    data = build_data(base / "data")
    config = write_config(base / "tiny.toml", data, tiny_bert_dir)
    results = base / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "setfit", None)
        code = run.main([str(config), "--results-dir", str(results)])

        def again(*extra):
            return run.main([str(config), "--results-dir", str(results), *extra])

        yield {"code": code, "config": config, "results": results, "folder": results / "tiny", "again": again}


def _files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*.json"))}


def test_run_writes_cells_and_table(bench):
    assert bench["code"] == 0
    folder = bench["folder"]
    files = _files(folder)
    # zero-shot: one cell per task; trained: 2 tasks x 2 K x 2 seeds; setfit: none (skipped)
    assert sum(f.startswith("zero_shot/") for f in files) == 2
    assert sum(f.startswith("pet/") for f in files) == 8
    assert {"zero_shot/sst2-k0.json", "pet/mr-k4-s21.json", "tfidf/sst2-k2-s13.json", "probe/mr-k2-s13.json"} <= set(files)
    assert not any(f.startswith("setfit/") for f in files)

    cell = json.loads(files["pet/sst2-k2-s13.json"].read_text())
    assert cell["n_train"] == 4 and cell["n_dev"] == 4 and cell["k"] == 2 and cell["seed"] == 13
    assert cell["n_test"] == 8 and cell["n_test_available"] == 10 and cell["test_subset_seed"] == 0
    assert 0 <= cell["accuracy"] <= 1 and "macro_f1" in cell and cell["training"]["steps"] == 2
    assert cell["trainable_parameters"] > 10_000 and cell["artifact_bytes"] > 4 * cell["trainable_parameters"]
    assert cell["prompt"]["template"] == "sst2/it_was" and cell["prompt"]["model_kind"] == "masked"
    assert cell["data"]["train"]["file"] == "lm-bff/k-shot/SST-2/16-13/train.tsv"
    assert {"torch", "transformers", "promptlearn", "scikit-learn"} <= set(cell["environment"])
    assert cell["command"].endswith("--only pet --tasks sst2 --k 2 --seeds 13 --force")
    assert {"seconds", "fit_seconds", "predict_seconds"} <= set(cell["timing"])
    # floats are rounded to 6 digits
    assert all(len(m) <= 8 for m in re.findall(r"\d+\.\d+", _without_timing(files["pet/sst2-k2-s13.json"].read_text())))

    table = (folder / "table.md").read_text()
    assert "python -m benchmarks.run" in table and "population standard deviation" in table
    for k in (2, 4):
        section = table.split(f"## K = {k}")[1].split("## K =")[0]
        header = next(line for line in section.splitlines() if line.startswith("| method"))
        assert [c.strip() for c in header.strip("|").split("|")] == ["method", "SST-2", "MR", "avg"]
        rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")}
        assert {"zero_shot", "zero_shot_cal", "pet", "tfidf", "probe", "setfit"} <= set(rows)
        assert re.search(r"\| \d+\.\d \(\d+\.\d\) \|", rows["pet"])  # mean (std)
        assert "skipped" in rows["setfit"]
        assert "8 of 10" in rows["*test examples*"]
    assert "pip install -e '.[bench]'" in table
    assert re.search(r"- `pet`: \d+\.\d s per run \(median of 8; ", table)  # 2 Ks x 2 tasks x 2 seeds
    assert re.search(r"- `zero_shot`: \d+\.\d s per run \(median of 2; ", table)  # one per task, whatever K
    params = f"{cell['trainable_parameters']:,}"
    assert re.search(rf"- `pet`: [\d,–]*{params}[\d,–]* trainable parameters, "
                     r"saved artifact [\d.]+ [kMG]?B(–[\d.]+ [kMG]?B)? "
                     r"\(8 runs\)", table)
    assert "- `tfidf`:" not in table.split("costs to keep")[1].split("Methods:")[0]  # only prompt methods save one
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in table
    else:
        assert (folder / "k_sweep.png").stat().st_size > 1000 and "(k_sweep.png)" in table

    # benchmarks.report folds every table.md into RESULTS.md, links made relative to benchmarks/
    section = "\n".join(report.runner_sections(bench["results"]))
    assert "## tiny" in section and "| pet |" in section
    assert ("(results/tiny/k_sweep.png)" in section) == ("(k_sweep.png)" in table)


def test_resume_skips_finished_cells(bench, capsys):
    files = _files(bench["folder"])
    before = {name: p.stat().st_mtime_ns for name, p in files.items()}
    victim = files["probe/mr-k4-s21.json"]
    victim.unlink()
    capsys.readouterr()
    assert bench["again"]() == 0
    err = capsys.readouterr().err
    assert "ran 1," in err and "1 to run" in err
    after = {name: p.stat().st_mtime_ns for name, p in _files(bench["folder"]).items()}
    assert after.pop("probe/mr-k4-s21.json") and before.pop("probe/mr-k4-s21.json")
    assert after == before  # nothing else was rewritten


def test_table_only_rewrites_the_table_and_runs_nothing(bench, capsys):
    table = bench["folder"] / "table.md"
    before = table.read_text()
    files = {name: p.stat().st_mtime_ns for name, p in _files(bench["folder"]).items()}
    table.unlink()
    assert bench["again"]("--table-only") == 0
    assert "nothing run" in capsys.readouterr().err
    after = table.read_text()
    # the same table, except that setfit's "skipped" note needs a run that tried it
    assert after.replace("skipped", "–").count("|") == before.replace("skipped", "–").count("|")
    assert [line for line in after.splitlines() if line.startswith("| pet")] == [
        line for line in before.splitlines() if line.startswith("| pet")]
    assert {name: p.stat().st_mtime_ns for name, p in _files(bench["folder"]).items()} == files


def test_two_runs_give_identical_json_apart_from_timing(bench):
    first = {name: p.read_text() for name, p in _files(bench["folder"]).items()}
    assert bench["again"]("--force", "--only", "zero_shot", "zero_shot_cal", "pet", "tfidf", "probe") == 0
    second = {name: p.read_text() for name, p in _files(bench["folder"]).items()}
    assert first.keys() == second.keys()
    for name in first:
        assert _without_timing(first[name]) == _without_timing(second[name]), name
    assert any(first[n] != second[n] for n in first)  # the timing did change: the files were rewritten


def test_reproduce_reruns_cells_and_reports_a_difference(bench, capsys):
    from benchmarks import reproduce

    common = [str(bench["config"]), "--results-dir", str(bench["results"]), "--tasks", "sst2", "--k", "2"]
    files = _files(bench["folder"])
    before = {name: p.read_text() for name, p in files.items()}
    assert reproduce.main([*common, "--only", "tfidf", "pet"]) == 0
    assert {name: p.read_text() for name, p in files.items()} == before  # the rerun went to a scratch folder
    record = json.loads((bench["results"] / "reproducibility" / "tiny.json").read_text())
    assert [c["cell"] for c in record["cells"]] == ["pet/sst2-k2-s13.json", "pet/sst2-k2-s21.json",
                                                    "tfidf/sst2-k2-s13.json", "tfidf/sst2-k2-s21.json"]
    assert all(c["identical"] and c["accuracy"][0] == c["accuracy"][1] for c in record["cells"])

    # a result file that no longer matches what its command computes is reported, and the record says why
    victim = files["tfidf/sst2-k2-s13.json"]
    cell = json.loads(victim.read_text())
    cell["accuracy"] = 1.0 - cell["accuracy"] + 0.125
    victim.write_text(json.dumps(cell))
    try:
        assert reproduce.main([*common, "--only", "tfidf", "--seeds", "13"]) == 1
    finally:
        victim.write_text(before["tfidf/sst2-k2-s13.json"])
    assert "DIFFERS tfidf/sst2-k2-s13.json" in capsys.readouterr().err
    cells = {c["cell"]: c for c in json.loads((bench["results"] / "reproducibility" / "tiny.json").read_text())["cells"]}
    assert len(cells) == 4 and cells["tfidf/sst2-k2-s13.json"]["differing_keys"] == ["accuracy"]
    assert cells["pet/sst2-k2-s13.json"]["identical"]  # earlier records are kept

    # a key the file on disk lacks (written before the runner recorded it) is named, not counted as a difference
    older = files["pet/sst2-k2-s21.json"]
    cell = json.loads(older.read_text())
    del cell["artifact_bytes"]
    older.write_text(json.dumps(cell))
    try:
        assert reproduce.main([*common, "--only", "pet", "--seeds", "21"]) == 0
    finally:
        older.write_text(before["pet/sst2-k2-s21.json"])
    cells = {c["cell"]: c for c in json.loads((bench["results"] / "reproducibility" / "tiny.json").read_text())["cells"]}
    older_cell = cells["pet/sst2-k2-s21.json"]
    assert older_cell["identical"] and older_cell["unshared_keys"] == ["artifact_bytes"]
    assert "in one file only: artifact_bytes" in capsys.readouterr().err

    section = "\n".join(report.reproducibility_section(bench["results"]))
    assert "| tiny | `pet/sst2-k2-s13.json` |" in section and "| no: accuracy |" in section
    assert "| yes (in one file only: artifact_bytes) |" in section

    # cells that are not finished are refused before anything runs
    assert reproduce.main([*common, "--only", "setfit"]) == 2
    assert "not finished" in capsys.readouterr().err


def test_checksum_mismatch_stops_before_any_cell(tmp_path, tiny_bert_dir):
    data = build_data(tmp_path / "data")
    bad = data / "lm-bff" / "k-shot" / "mr" / "16-21" / "test.csv"
    bad.write_text(bad.read_text().replace("great", "grate", 1))
    config = write_config(tmp_path / "tiny.toml", data, tiny_bert_dir, k="4")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", str(config), "--results-dir", str(tmp_path / "out"),
                           "--only", "tfidf"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "checksum mismatch" in proc.stderr and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_sampling_rules_and_disjoint_dev(tmp_path):
    data = build_data(tmp_path / "data", seeds=(13,))
    full = data / "lm-bff" / "full" / "SST-2"
    full.mkdir(parents=True)
    (full / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in _rows(40, 0)))
    (full / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"dev {s}\t{y}\n" for s, y in _rows(10, 3)))
    source = run.DataSource(data)
    (X, y), (Xd, yd), files = source.train_dev("sst2", 32, 13)
    assert len(y) == 64 and y.count("positive") == 32 and files["train"]["file"] == "lm-bff/full/SST-2/train.tsv"
    assert len(yd) == 20 and yd.count("negative") == 10  # a class short of K in the dev split gives all it has
    assert not {e["text"] for e in X} & {e["text"] for e in Xd}
    (X, y), (Xd, yd), files = source.train_dev("sst2", 2, 13)
    assert len(y) == len(yd) == 4 and files["dev"]["file"] == "lm-bff/k-shot/SST-2/16-13/dev.tsv"
    assert source.train_dev("sst2", 2, 13)[0] == (X, y)  # seeded


def test_config_errors_name_the_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\ntasks = ["sst2"]\nepochs = 3\n[[methods]]\nname = "m"\nkind = "tfidf"\n')
    assert run.main([str(path), "--dry-run"]) == 2
    assert "unknown key(s) ['epochs']" in capsys.readouterr().err
    path.write_text('name = "x"\ntasks = ["sst2"]\n[[methods]]\nname = "m"\nkind = "prompt"\nmodel = "m"\n'
                    'learning_rat = 1e-5\n')
    assert run.main([str(path), "--dry-run"]) == 2
    assert "unknown parameter(s) ['learning_rat']" in capsys.readouterr().err
    ensemble = 'name = "x"\ntasks = ["sst2", "trec"]\n[[methods]]\nname = "e"\nkind = "ensemble"\nmodel = "m"\n'
    for extra, message in [('templates = ["{task}/it_was"]\n', "two or more templates"),
                           ('[methods.templates]\nsst2 = ["a [MASK]", "b [MASK]"]\n', "no list for ['trec']"),
                           ('templates = ["a [MASK]", "b [MASK]"]\nipet_generations = 1\n', "set unlabeled"),
                           ('templates = ["a [MASK]", "b [MASK]"]\nunlabeled = -3\n', "unlabeled must be")]:
        path.write_text(ensemble + extra)
        assert run.main([str(path), "--dry-run"]) == 2
        assert message in capsys.readouterr().err, extra
    path.write_text(ensemble + '[methods.templates]\ndefault = ["a [MASK]", "b [MASK]"]\ntrec = ["c [MASK]", "d [MASK]"]\n')
    assert run.load_config(path).methods[0].rows()[0] == "e_best_single"


def test_shipped_configs_parse():
    assert run.REPO == ROOT  # models named relative to the repository are found from any folder
    configs = sorted((ROOT / "benchmarks" / "configs").glob("*.toml"))
    assert {p.stem for p in configs} >= {"lmbff_k16_minilm", "zero_shot_smollm2", "k_sweep", "out_of_domain",
                                         "lmbff_k16_nli", "lmbff_k16_smollm2", "sources_k16_minilm", "sources_sst2_large",
                                         "ensemble_k16_minilm",
                                         "search_k16_minilm", "search_margin_k16_minilm",
                                         "demonstrations_smollm2"}
    for path in configs:
        config = run.load_config(path)
        assert run.plan(config), path


def test_out_of_domain_finetune_and_causal_model(tmp_path, tiny_gpt2_dir, tiny_bert_dir):
    data = build_data(tmp_path / "data", seeds=(13,))
    config = tmp_path / "ood.toml"
    config.write_text(f"""
name = "ood"
tasks = ["sst2"]
test_tasks = ["sst2", "mr"]
k = 4
seeds = [13]
data_root = "{data}"
[model]
default = "{tiny_gpt2_dir}"
finetune = "{tiny_bert_dir}"
[[methods]]
name = "zero_shot"
kind = "zero_shot"
[[methods]]
name = "pet"
kind = "prompt"
max_steps = 1
train_batch_size = 4
[[methods]]
name = "finetune"
kind = "finetune"
max_steps = 1
train_batch_size = 4
""", encoding="utf-8")
    assert run.main([str(config), "--results-dir", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "ood"
    assert {str(p.relative_to(folder)) for p in folder.rglob("*.json")} == {
        "zero_shot/sst2-k0.json", "zero_shot/sst2-to-mr-k0.json", "pet/sst2-k4-s13.json", "pet/sst2-to-mr-k4-s13.json",
        "finetune/sst2-k4-s13.json", "finetune/sst2-to-mr-k4-s13.json"}
    cell = json.loads((folder / "pet" / "sst2-to-mr-k4-s13.json").read_text())
    assert cell["task"] == "sst2" and cell["test_task"] == "mr" and cell["n_test"] == 10
    assert cell["prompt"]["template"] == "sst2/review" and cell["prompt"]["model_kind"] == "causal"
    assert cell["data"]["test"]["file"] == "lm-bff/k-shot/mr/16-13/test.csv"
    assert json.loads((folder / "finetune" / "sst2-k4-s13.json").read_text())["model"] == str(tiny_bert_dir)
    header = next(line for line in (folder / "table.md").read_text().splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["method", "SST-2", "SST-2 → MR", "avg"]
    assert "- `pet`: " in (folder / "table.md").read_text().split("costs to keep")[1]
    assert re.search(r"- `pet`: [\d,]+ trainable parameters, saved artifact [\d.]+ [kMG]?B \(1 run\)",
                     (folder / "table.md").read_text())  # one training run, tested on two tasks
    assert re.search(r"- `pet`: \d+\.\d s \(1 run\)", (folder / "table.md").read_text())  # its wall time, once


def _full_train(root: Path) -> None:
    """``lm-bff/full/SST-2/train.tsv``: the unlabelled pool (no checksum: LM-BFF publishes none for it)."""
    folder = root / "lm-bff" / "full" / "SST-2"
    folder.mkdir(parents=True)
    rows = _rows(20, 3)
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"{s} u\t{y}\n" for s, y in rows), encoding="utf-8")


def test_icl_and_ensemble_rows(tmp_path, tiny_bert_dir):
    data = build_data(tmp_path / "data", seeds=(13,))
    _full_train(data)
    config = tmp_path / "multi.toml"
    config.write_text(f"""
name = "multi"
model = "{tiny_bert_dir}"
tasks = ["sst2"]
k = 4
seeds = [13]
data_root = "{data}"
[[methods]]
name = "icl"
kind = "icl"
demos = 1
[[methods]]
name = "pet"
kind = "ensemble"
max_steps = 2
train_batch_size = 4
learning_rate = 1e-3
unlabeled = 12
student_max_steps = 2
ipet_generations = 1
[methods.templates]
default = ["{{task}}/it_was", "{{{{ text }}}} All in all, it was [MASK]."]
[[methods]]
name = "bitfit"
kind = "prompt"
source = "bitfit"
max_steps = 1
train_batch_size = 4
[[methods]]
name = "found"
kind = "search"
search_method = "labels"
search_top_k_words = 4
search_label_sets = 2
search_train_steps = 2
search_keep_margin = 1.0
start_from_manual = true
max_steps = 2
train_batch_size = 4
""", encoding="utf-8")
    assert run.main([str(config), "--results-dir", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "multi"
    rows = ["icl", "icl_calibrated"] + [f"pet_{r}" for r in ("best_single", "mean_single", "mean", "log_mean",
                                                              "weighted", "vote", "distilled", "ipet")]
    assert {str(p.relative_to(folder)) for p in folder.rglob("*.json")} == {f"{r}/sst2-k4-s13.json"
                                                                           for r in rows + ["bitfit", "found_zero_shot",
                                                                                            "found_pet"]}
    found = json.loads((folder / "found_pet" / "sst2-k4-s13.json").read_text())
    assert found["search"]["best"]["template"].endswith("{{ text }} It was [MASK].") and found["search"]["candidates"] > 1
    # start_from_manual: the manual prompt is the search's baseline, kept first by the (maximal) margin
    assert found["search"]["best"]["source"] == "given" and found["search"]["options"]["verbalizer"] == "sst2"
    assert found["search"]["best"]["label_words"] == {"negative": ["terrible"], "positive": ["great"]}
    assert any(note.startswith("kept the given prompt first") for note in found["search"]["notes"])
    assert found["training"]["steps"] == 2 and found["timing"]["search_seconds"] > 0
    assert '"seconds"' not in _without_timing((folder / "found_pet" / "sst2-k4-s13.json").read_text())
    bitfit = json.loads((folder / "bitfit" / "sst2-k4-s13.json").read_text())
    biases = sum(p.numel() for n, p in AutoModelForMaskedLM.from_pretrained(tiny_bert_dir).named_parameters()
                 if n.endswith("bias"))
    assert bitfit["trainable_parameters"] == biases and bitfit["artifact_bytes"] < 4 * biases + 20_000
    cells = {r: json.loads((folder / r / "sst2-k4-s13.json").read_text()) for r in rows}
    raw, calibrated = cells["icl"], cells["icl_calibrated"]
    assert raw["method_entry"] == calibrated["method_entry"] == "icl" and raw["kind"] == "icl"
    assert raw["timing"] == calibrated["timing"]  # one run fills both rows
    assert raw["estimator_params"]["demos"] == 1 and raw["n_train"] == 8
    mean_single = cells["pet_mean_single"]
    assert len(mean_single["set_accuracies"]) == 2 and mean_single["confusion_matrix"] is None
    assert mean_single["accuracy"] == pytest.approx(sum(mean_single["set_accuracies"]) / 2, abs=1e-6)
    best = cells["pet_best_single"]
    assert best["accuracy"] == pytest.approx(mean_single["set_accuracies"][best["best_member"]], abs=1e-6)
    assert best["best_member"] == int(max(range(2), key=lambda i: (best["member_dev_accuracy"][i], -i)))
    assert [p["template"] for p in best["prompts"]] == ["sst2/it_was", "{{ text }} All in all, it was [MASK]."]
    assert best["n_unlabeled"] == 12 and best["unlabeled"]["file"] == "lm-bff/full/SST-2/train.tsv"
    assert best["ipet_train_sizes"][0] == [8, 8] and best["ipet_train_sizes"][1][0] > 8
    assert best["estimator_params"]["ensemble"] == {"ipet_generations": 1, "student_max_steps": 2, "unlabeled": 12}
    for path in folder.rglob("*.json"):  # no repr with a memory address: the same run twice, the same file
        assert not OBJECT_REPR.search(path.read_text()), path
    table = (folder / "table.md").read_text()
    for r in rows:
        assert f"| {r} |" in table
    assert "rows: `icl`, `icl_calibrated`" in table
    assert re.search(r"- `found`: [\d.]+ s \(1 run\), of which search and training [\d.]+ s \(the search alone ", table)
    assert "- `found`: given 1 (of 1 runs)" in table
    # a method whose rows clash with another's is refused before anything runs
    config.write_text(config.read_text() + '[[methods]]\nname = "icl_calibrated"\nkind = "tfidf"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="same rows"):
        run.load_config(config)


def test_committed_results_hold_no_object_reprs():
    """A repr such as ``<object object at 0x7f...>`` differs between runs and would break "same command twice"."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks" / "results").rglob("*.json")
                 if OBJECT_REPR.search(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders[:5]


def test_report_help_and_bad_flags_exit_without_rewriting_results(monkeypatch, tmp_path, capsys):
    target = tmp_path / "RESULTS.md"
    monkeypatch.setattr(report, "TARGET", target)
    with pytest.raises(SystemExit) as help_exit:
        report.main(["--help"])
    assert help_exit.value.code == 0 and "Regenerate benchmarks/RESULTS.md" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad_exit:
        report.main(["--bogus"])
    assert bad_exit.value.code == 2 and "--bogus" in capsys.readouterr().err
    assert not target.exists()


def test_table_reports_each_single_prompts_own_spread_and_differing_environments(tmp_path):
    from benchmarks.runner.table import render_table

    config_path = tmp_path / "spread.toml"
    config_path.write_text('name = "spread"\nmodel = "unused"\ntasks = ["sst2", "trec"]\nk = 16\nseeds = [13, 21]\n'
                           '[[methods]]\nname = "pet"\nkind = "ensemble"\n'
                           'templates = ["{task}/it_was", "{task}/review"]\n',
                           encoding="utf-8")
    config = run.load_config(config_path)
    # two prompts whose accuracies swap between the seeds: each prompt's own std is 0.2, their per-seed mean's 0
    accuracies = {("sst2", 13): [0.9, 0.5], ("sst2", 21): [0.5, 0.9], ("trec", 13): [0.6, 0.6]}
    for (task, seed), sets in accuracies.items():
        cell = {"method": "pet_mean_single", "task": task, "test_task": task, "k": 16, "seed": seed,
                "accuracy": sum(sets) / 2, "set_accuracies": sets, "n_test": 10, "n_test_available": 10,
                "environment": {"torch": "2.13.0", "torch_threads": 1 if seed == 13 else 2}}
        (tmp_path / "out" / "spread" / "pet_mean_single").mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / "spread" / "pet_mean_single" / f"{task}-k16-s{seed}.json").write_text(json.dumps(cell))
    table = render_table(config, tmp_path / "out", command="python -m benchmarks.run spread.toml")
    assert "| pet_mean_single | 70.0 (0.0) | 60.0 (0.0) [1/2] |" in table
    assert "- `pet_mean_single`: SST-2 20.0, TREC 0.0 [1/2]" in table
    assert "Not every cell ran the same way: `torch_threads` 1, 2" in table
