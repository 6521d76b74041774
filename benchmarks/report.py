"""Regenerate benchmarks/RESULTS.md from the JSON files in benchmarks/results/ (never edit RESULTS.md by hand).

It also takes in every ``benchmarks/results/<config>/table.md`` that ``python -m benchmarks.run CONFIG`` wrote
(itself generated from that config's per-run JSON), with its plot.

Run:  python -m benchmarks.report
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from benchmarks.common import RESULTS

TARGET = Path(__file__).resolve().parent / "RESULTS.md"
TASK_ORDER = ["sst2", "sst5", "mr", "cr", "subj", "trec", "agnews", "rte"]


def _load(pattern: str) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob(pattern))]


def _load_one(name: str) -> dict | None:
    """The result a single-run benchmark script wrote (``benchmarks/results/<name>``), if it exists."""
    results = _load(name)
    return results[0] if results else None


def _command_footer(result: dict) -> list[str]:
    """The closing lines of a single-run section: the command that reproduces it and where it ran."""
    return ["", f"Command: `{result['command']}`. Environment: {_environment_line(result['environment'])}.", ""]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _environment_line(env: dict) -> str:
    return (f"promptlearn {env['promptlearn']}, torch {env['torch']}, transformers {env['transformers']}, "
            f"Python {env['python']}, {env['device']} ({env['cpu_count']} cores, {env['torch_threads']} torch threads)")


def zero_shot_section() -> list[str]:
    cells = _load("zero_shot/*/*.json")
    if not cells:
        return []
    lines = ["## Zero-shot accuracy (test sets)", ""]
    for model in sorted({c["model"] for c in cells}):
        rows = sorted((c for c in cells if c["model"] == model),
                      key=lambda c: (TASK_ORDER.index(c["task"]) if c["task"] in TASK_ORDER else 99, c["template"]))
        lines += [f"Model `{model}`. Accuracy ×100 on each test set (LM-BFF's for SST-2, SST-5, MR, CR, Subj, TREC, "
                  "RTE; AG News's official test set), raw and with contextual calibration (content-free inputs "
                  "`N/A`, empty, `[MASK]`), from the same scores. *n* below the test-set size means a fixed seeded "
                  "subset (seed in the JSON). `after mask`: how a causal LM treats text after `[MASK]` (`score`: "
                  "each label word is scored with the text that follows it; `drop`: the prompt ends at the mask). "
                  "*ex/s* is indicative only: these runs shared the 2 cores with other jobs; the throughput "
                  "section has clean speed measurements.",
                  "",
                  "| task | template | label words | after mask | n | accuracy | calibrated | macro-F1 (raw / cal.) | ex/s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in rows:
            words = "; ".join(f"{k}: {', '.join(v)}" for k, v in c["label_words"].items())
            n = f"{c['n_examples']}" + (f" of {c['n_available']}" if c["n_examples"] < c["n_available"] else "")
            lines.append(f"| {c['task']} | `{c['template']}` | {words} | {c.get('after_mask') or '-'} | {n} | "
                         f"{_pct(c['accuracy'])} | {_pct(c['calibrated_accuracy'])} | "
                         f"{_pct(c['macro_f1'])} / {_pct(c['calibrated_macro_f1'])} | {c['examples_per_second']} |")
        best = {}
        for c in rows:
            for key in ("accuracy", "calibrated_accuracy"):
                if c["n_examples"] == c["n_available"]:
                    best.setdefault(c["task"], []).append(c[key])
        lines += ["", "Best full-test-set prompt per task (raw or calibrated): "
                  + ", ".join(f"{t} {_pct(max(v))}" for t, v in best.items()) + ".", ""]
        lines += ["Reproduce one row: the `command` field of its JSON in "
                  f"`benchmarks/results/zero_shot/{model}/`; all rows: `python -m benchmarks.zero_shot --model {model}"
                  " --force`.", f"Environment: {_environment_line(rows[0]['environment'])}.", ""]
    return lines


def throughput_section() -> list[str]:
    r = _load_one("throughput.json")
    if r is None:
        return []
    m, c = r["masked"], r["causal"]
    return [
        "## Throughput of `predict_proba`", "",
        f"Prompts: LM-BFF SST-2 test sentences, batch size {m['batch_size']}, best of repeated runs. "
        "*Limit*: the same prompts tokenised and batched the same way (sorted by length) through the bare "
        "model, with the vocabulary projection applied only at the mask (masked LM) or last (causal LM) "
        "position: the physical limit of scoring. *Full logits*: the same with the projection at every "
        "position. *fill-mask*: transformers' pipeline with `targets`.", "",
        "| model | n | promptlearn ex/s | limit ex/s | ratio to limit | full logits ex/s | fill-mask pipeline ex/s | speed-up vs pipeline |",
        "|---|---|---|---|---|---|---|---|",
        f"| {m['model']} | {m['n_examples']} | {m['promptlearn_ex_per_s']:.1f} | {m['limit_ex_per_s']:.1f} | "
        f"{m['ratio_to_limit']:.2f} | {m['full_logits_ex_per_s']:.1f} | {m['fill_mask_pipeline_ex_per_s']:.1f} | "
        f"{m['speedup_vs_pipeline']:.1f}× |",
        f"| {c['model']} | {c['n_examples']} | {c['promptlearn_ex_per_s']:.1f} | {c['limit_ex_per_s']:.1f} | "
        f"{c['ratio_to_limit']:.2f} | {c['full_logits_ex_per_s']:.1f} | - | - |",
    ] + _command_footer(r)


def gpu_sections() -> list[str]:
    """``python -m benchmarks.gpu``: promptlearn against the bare model, one section per device kind."""
    lines: list[str] = []
    for r in _load("gpu_*.json"):
        device = r["environment"]["device"]
        lines += [f"## How close promptlearn runs to the bare model ({device})", "",
                  "Each ratio is measured against the bare model in the same run (random weights from each model's "
                  "config; the cost does not depend on the weights). Texts: " + r["texts"] + ".", ""]
        host = r.get("host_overhead")
        if host:
            lines += ["**Host overhead** (CPU, one torch thread, one tokenizer thread; a 1-layer hidden-32 BERT, "
                      f"batch {host['batch_size']}, {host['n']} prompts): *ratio* = (predict_proba − bare forward) "
                      "/ the fast tokenizer alone on the same prompts (target ≤ 1.5).", "",
                      "| tokenizer µs/ex | bare forward µs/ex | predict_proba µs/ex | host work µs/ex | ratio |",
                      "|---|---|---|---|---|",
                      f"| {host['tokenizer_us']:.1f} | {host['bare_us']:.1f} | {host['predict_proba_us']:.1f} | "
                      f"{host['host_us']:.1f} | {host['ratio']:.2f} |", ""]
        if r.get("scoring"):
            lines += ["**Scoring**: predict_proba against the bare batched forward over the same prompts (pre-"
                      "tokenized, sorted by length, on the device; vocabulary projection only at the read position); "
                      "*ratio* = promptlearn ex/s ÷ bare ex/s (target ≥ 0.9). *max diff*: largest absolute difference "
                      "of the log-probabilities.", "",
                      "| model | dtype | n | batch | bare ex/s | promptlearn ex/s | ratio | max diff |",
                      "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {x['model']} | {x['dtype']} | {x['n']} | {x['batch_size']} | {x['bare_ex_per_s']:.0f} | "
                      f"{x['promptlearn_ex_per_s']:.0f} | {x['ratio']:.2f} | {x['max_abs_difference']:.1e} |"
                      for x in r["scoring"]]
            lines.append("")
        if r.get("training"):
            lines += ["**Training step**: one `PromptClassifier.fit` optimizer step (difference of a long and a short "
                      "run) against a bare forward + backward + clipping + AdamW step on the same batches; bfloat16 is "
                      "mixed precision in both. *ratio* = promptlearn ÷ bare (target ≤ 1.1).", "",
                      "| model | dtype | batch | bare ms/step | promptlearn ms/step | ratio |", "|---|---|---|---|---|---|"]
            lines += [f"| {x['model']} | {x['dtype']} | {x.get('batch_size', 16)} | {x['bare_step_ms']:.1f} | "
                      f"{x['promptlearn_step_ms']:.1f} | {x['ratio']:.2f} |" for x in r["training"]]
        lines += _command_footer(r)
    return lines


def dtype_section() -> list[str]:
    r = _load_one("dtype_agreement.json")
    if r is None:
        return []
    lines = ["## bfloat16 against float32", "",
             "The LM-BFF SST-2 test sentences scored in both dtypes on the CPU: *agreement* is the share of examples "
             "with the same predicted class; *max diff* the largest absolute probability difference.", "",
             "| model | kind | prompt | n | agreement | max diff | all finite | accuracy fp32 | accuracy bf16 | "
             "ex/s fp32 | ex/s bf16 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        lines.append(f"| {x['model']} | {x['kind']} | `{x['template']}` | {x['n_examples']} | "
                     f"{_pct(x['argmax_agreement'])} % | {x['max_abs_probability_difference']:.3f} | "
                     f"{x['bfloat16_all_finite']} | {_pct(x['float32']['accuracy'])} | "
                     f"{_pct(x['bfloat16']['accuracy'])} | {x['float32']['ex_per_s']:.0f} | "
                     f"{x['bfloat16']['ex_per_s']:.0f} |")
    return lines + _command_footer(r)


def prompt_bank_section() -> list[str]:
    r = _load_one("prompt_bank.json")
    if r is None:
        return []
    lines = ["## Many prompts, one batch (`PromptBank`)", "",
             f"Model `{r['model']}`; {r['rows'][0]['n_requests']} requests (LM-BFF SST-2 test sentences), each naming "
             "one of P prompts at random; batch size " + str(r["rows"][0]["batch_size"]) + ", best of repeated runs. "
             "*Mixed*: one call, rows of different prompts sharing batches; *one at a time*: one call per prompt. "
             "Both give the same log-probabilities (largest difference shown).", "",
             "| source | prompts P | mixed ex/s | one at a time ex/s | speed-up | max abs difference |",
             "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['source']} {row['options']} | {row['n_prompts']} | {row['mixed_ex_per_s']:.1f} | "
                     f"{row['one_at_a_time_ex_per_s']:.1f} | {row['speedup']:.2f}× | {row['max_abs_difference']:.1e} |")
    return lines + _command_footer(r)


def demo_cache_section() -> list[str]:
    r = _load_one("demo_cache.json")
    if r is None:
        return []
    lines = ["## Shared-prefix cache of k-shot prompts (causal LMs)", "",
             "The same fixed demonstrations (`demo_selection=\"balanced\"`) precede every query. *Cached*: their "
             "keys and values are computed once per scoring call and only each query is fed after them; "
             "*recomputed*: every query runs the whole prompt. Seconds per example, best of two interleaved runs; "
             "the two give the same log-probabilities (largest difference shown).", "",
             "| model | demonstrations per class | context tokens | query tokens (mean) | queries | recomputed s/ex "
             "| cached s/ex | speed-up | max abs difference |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['model']} | {row['demos_per_class']} | {row['context_tokens']} | "
                     f"{row['mean_query_tokens']} | {row['queries']} | {row['s_per_example_recomputed']:.4f} | "
                     f"{row['s_per_example_cached']:.4f} | {row['speed_up']:.1f}× | {row['max_abs_diff']:.1e} |")
    return lines + _command_footer(r)


def startup_section() -> list[str]:
    r = _load_one("startup.json")
    if r is None:
        return []
    command = " ".join(a if " " not in a and "{" not in a else "'...'" for a in r["arguments"])
    return ["## Start-up of a command (launch to scoring)", "",
            "Seconds from launching a fresh `promptlearn` process until it starts scoring its first example, "
            "with the GGUF conversion already cached (the second call of the README's first-hour walkthrough: "
            f"`promptlearn {command}`). Runs: " + ", ".join(f"{s:.2f}" for s in r["seconds"]) +
            f" s; median **{r['median']:.2f} s**. scikit-learn imported before scoring: "
            f"{'yes' if r['sklearn_before_scoring'] else 'no'}."] + _command_footer(r)


def streaming_section() -> list[str]:
    from benchmarks.streaming import report_section

    r = _load_one("streaming.json")
    return report_section(r) + [""] if r else []


def ray_section() -> list[str]:
    from benchmarks.ray_scaling import report_section

    r = _load_one("ray_scaling.json")
    return report_section(r) if r else []


def onnx_section() -> list[str]:
    from benchmarks.onnx_speed import report_section

    r = _load_one("onnx_speed.json")
    return report_section(r) + [""] if r else []


def reproducibility_section(results: Path = RESULTS) -> list[str]:
    """The cells that ``python -m benchmarks.reproduce`` recomputed, and whether they came out the same."""
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results.glob("reproducibility/*.json"))]
    if not records:
        return []
    lines = ["## Same command twice", "",
             "Finished cells recomputed by `python -m benchmarks.reproduce` (which reruns them with "
             "`benchmarks.run --force` into a scratch folder) and compared with the result file on disk, every "
             "key both hold but `timing` (keys in one file only, from a runner that did not record them yet, are "
             "named and not counted).", "",
             "| config | cell | accuracy (on disk) | accuracy (rerun) | identical apart from timing | seconds (on disk / rerun) |",
             "|---|---|---|---|---|---|"]
    for record in records:
        for cell in record["cells"]:
            verdict = "yes" if cell["identical"] else "no: " + ", ".join(cell["differing_keys"])
            if cell.get("unshared_keys"):
                verdict += " (in one file only: " + ", ".join(cell["unshared_keys"]) + ")"
            first, second = cell["accuracy"]
            lines.append(f"| {record['config']} | `{cell['cell']}` | {100 * first:.2f} | {100 * second:.2f} | "
                         f"{verdict} | {cell['seconds'][0]:.1f} / {cell['seconds'][1]:.1f} |")
    commands = sorted({c["command"] for r in records for c in r["cells"]})
    return lines + ["", "Commands: " + "; ".join(f"`{c}`" for c in commands) + ".",
                    f"Environment: {_environment_line(records[-1]['environment'])}.", ""]


def runner_sections(results: Path = RESULTS) -> list[str]:
    """Every ``<results>/<config>/table.md`` of the benchmark runner, headings one level down and relative
    links (the K-sweep plot) rewritten to point from benchmarks/ into the config's folder."""
    lines: list[str] = []
    for table in sorted(results.glob("*/table.md")):
        prefix = f"{results.name}/{table.parent.name}/"
        text = table.read_text(encoding="utf-8").strip()
        text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
        text = re.sub(r"\]\((?![a-z]+:|/|#)([^)]+)\)", lambda m: f"]({prefix}{m.group(1)})", text)
        lines += [text, ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0]).parse_args(argv)
    lines = ["# Benchmark results", "",
             "Generated by `python -m benchmarks.report` from the JSON files in `benchmarks/results/`; do not edit "
             "by hand. Every figure was measured by the command shown with it.", ""]
    lines += (runner_sections() + reproducibility_section() + zero_shot_section() + throughput_section()
              + gpu_sections() + dtype_section() + prompt_bank_section() + demo_cache_section()
              + startup_section() + streaming_section() + ray_section() + onnx_section())
    TARGET.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
