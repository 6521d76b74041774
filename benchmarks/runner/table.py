"""Result files (atomic, sorted, rounded JSON) and what is generated from them: table.md and k_sweep.png."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner.config import BENCH_HINT, DISPLAY, Config, cell_stem

# ----------------------------------------------------------------------------------------------------
# Result files
# ----------------------------------------------------------------------------------------------------


def _rounded(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_rounded(v) for v in value]
    return str(value)


def dumps(result: Mapping[str, Any]) -> str:
    return json.dumps(_rounded(result), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_text(path: Path, text: str) -> None:
    """Atomically (temp file + rename); unlike promptlearn.io.artifacts' mkstemp, the file gets the usual
    permissions (0644 under the common umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, result: Mapping[str, Any]) -> None:
    write_text(path, dumps(result))


# ----------------------------------------------------------------------------------------------------
# Table and plot
# ----------------------------------------------------------------------------------------------------


@dataclass
class Stat:
    values: list[float] = field(default_factory=list)
    expected: int = 1

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))  # population std (ddof=0), as LM-BFF reports it

    def cell(self) -> str:
        if not self.values:
            return "–"
        if self.expected == 1:
            return f"{100 * self.mean:.1f}"
        text = f"{100 * self.mean:.1f} ({100 * self.std:.1f})"
        return text if len(self.values) == self.expected else f"{text} [{len(self.values)}/{self.expected}]"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def collect(config: Config, results: Path) -> tuple[dict, list[dict]]:
    """stats[k][method][column] -> Stat, from the result files on disk; and every result read (once each:
    a zero-shot cell serves every K)."""
    folder = results / config.name
    stats: dict[int, dict[str, dict[tuple[str, str], Stat]]] = {}
    seen: list[dict] = []
    read: set[Path] = set()
    for k in config.ks:
        per_method: dict[str, dict[tuple[str, str], Stat]] = {}
        for row_name, method in config.rows():
            row = {}
            for column in config.columns():
                task, test = column
                if method.kind == "zero_shot":
                    stems, expected = [cell_stem(task, test, 0, None)], 1
                else:
                    stems, expected = [cell_stem(task, test, k, s) for s in config.seeds], len(config.seeds)
                stat = Stat(expected=expected)
                for stem in stems:
                    path = folder / row_name / f"{stem}.json"
                    result = _read(path)
                    if result is not None and result.get("accuracy") is not None:
                        stat.values.append(float(result["accuracy"]))
                        if path not in read:
                            read.add(path)
                            seen.append(result)
                row[column] = stat
            per_method[row_name] = row
        stats[k] = per_method
    return stats, seen


def _column_name(task: str, test: str) -> str:
    return DISPLAY.get(test, test) if task == test else f"{DISPLAY.get(task, task)} → {DISPLAY.get(test, test)}"


def _env_line(env: Mapping[str, Any]) -> str:
    libs = ", ".join(f"{name} {env[name]}" for name in ("promptlearn", "torch", "transformers", "scikit-learn", "numpy",
                                                        "setfit", "sentence-transformers") if name in env)
    return (f"{libs}; Python {env.get('python')}; {env.get('device')} ({env.get('cpu_count')} cores, "
            f"{env.get('torch_threads')} torch threads)")


def _runs(method: Any, seen: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One result per run of ``method``: its first row's (a method's rows share one run), and one file of a run
    tested on several tasks (out-of-domain columns hold the same run's timing and footprint)."""
    first_row = method.rows()[0]
    runs: dict[tuple, Mapping[str, Any]] = {}
    for r in seen:
        if r.get("method") == first_row:
            runs.setdefault((r["task"], r.get("k"), r.get("seed")), r)
    return list(runs.values())


def _wall_time_lines(config: Config, seen: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per method: the median wall time of its finished runs (training and test prediction)."""
    lines = []
    for method in config.methods:
        runs = [r["timing"] for r in _runs(method, seen) if (r.get("timing") or {}).get("seconds")]
        if not runs:
            continue
        seconds = [t["seconds"] for t in runs]
        text = (f"- `{method.name}`: {seconds[0]:.1f} s (1 run)" if len(runs) == 1 else
                f"- `{method.name}`: {np.median(seconds):.1f} s per run (median of {len(runs)}; "
                f"{min(seconds):.1f}–{max(seconds):.1f} s)")
        fits = [t["fit_seconds"] for t in runs if t.get("fit_seconds") is not None]
        searches = [t["search_seconds"] for t in runs if t.get("search_seconds") is not None]
        if fits:
            text += f", of which {'search and training' if searches else 'training'} {np.median(fits):.1f} s"
            if searches:
                text += f" (the search alone {np.median(searches):.1f} s, {min(searches):.1f}–{max(searches):.1f} s)"
        lines.append(text)
    if not lines:
        return []
    return ["Wall time per run on the machine below (each cell's `timing`; it varies with the machine's load, "
            "the accuracies do not):", ""] + lines + [""]


def _search_choice_lines(config: Config, seen: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per search method: where the prompts it chose came from (``given``: the manual prompt kept)."""
    lines = []
    for method in config.methods:
        sources = Counter(r["search"]["best"]["source"] for r in _runs(method, seen) if r.get("search"))
        if sources:
            counts = ", ".join(f"{source} {n}" for source, n in sorted(sources.items(), key=lambda x: (-x[1], x[0])))
            lines.append(f"- `{method.name}`: {counts} (of {sum(sources.values())} runs)")
    if not lines:
        return []
    return ["Where the chosen prompts came from (`given`: the manual prompt, kept):", ""] + lines + [""]


def _prompt_spread_lines(config: Config, seen: Sequence[Mapping[str, Any]]) -> list[str]:
    """For a row that averages several prompts (an ensemble's mean single prompt): each prompt's own std across
    the seeds, averaged over the prompts. It is the spread one fixed prompt shows; the row's std is that of the
    per-seed mean of the prompts, which averaging shrinks."""
    lines = []
    for row_name, _ in config.rows():
        runs: dict[tuple, list[list[float]]] = {}
        for r in seen:
            if r.get("method") == row_name and r.get("set_accuracies"):
                runs.setdefault((r.get("k"), r["task"], r["test_task"]), []).append(r["set_accuracies"])
        cells = []
        for k in config.ks:
            for task, test in config.columns():
                accuracies = runs.get((k, task, test))
                if not accuracies or len({len(a) for a in accuracies}) != 1:
                    continue
                spread = float(np.std(np.array(accuracies), axis=0).mean())
                done = "" if len(accuracies) == len(config.seeds) else f" [{len(accuracies)}/{len(config.seeds)}]"
                cells.append(("" if len(config.ks) == 1 else f"K={k} ") + f"{_column_name(task, test)} "
                             f"{100 * spread:.1f}{done}")
        if cells:
            lines.append(f"- `{row_name}`: " + ", ".join(cells))
    if not lines:
        return []
    return ["A single prompt's own std across the seeds (each prompt's, from the runs' `set_accuracies`, averaged "
            "over the prompts; the row's std in the table is that of the per-seed mean of the prompts):",
            ""] + lines + [""]


def _size_text(n_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def _footprint_lines(config: Config, seen: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per trained prompt method: the parameters training changed and the size of the saved artifact
    (they vary a little with the task's number of classes, hence the ranges)."""
    lines = []
    for method in config.methods:
        runs = [r for r in _runs(method, seen) if r.get("trainable_parameters") is not None]
        if not runs:
            continue
        params = sorted({int(r["trainable_parameters"]) for r in runs})
        sizes = sorted(int(r["artifact_bytes"]) for r in runs)
        shown = f"{params[0]:,}" if len(params) == 1 else f"{params[0]:,}–{params[-1]:,}"
        smallest, largest = _size_text(sizes[0]), _size_text(sizes[-1])
        size = smallest if smallest == largest else f"{smallest}–{largest}"
        lines.append(f"- `{method.name}`: {shown} trainable parameters, saved artifact {size} "
                     f"({len(runs)} run{'s' if len(runs) != 1 else ''})")
    if not lines:
        return []
    return ["What a trained classifier costs to keep (each cell's `trainable_parameters` and `artifact_bytes`: "
            "the parameters training changed, and the folder `save` writes):", ""] + lines + [""]


def render_table(config: Config, results: Path, *, command: str, skipped: Mapping[str, str] | None = None,
                 plot_note: str | None = None) -> str:
    stats, seen = collect(config, results)
    columns = config.columns()
    names = [_column_name(t, s) for t, s in columns]
    lines = [f"# {config.name}", ""]
    if config.description:
        lines += [config.description.strip(), ""]
    by_column: dict[tuple[str, str], dict] = {}
    for result in seen:
        by_column.setdefault((result["task"], result["test_task"]), result)
    n_row = []
    for column in columns:
        r = by_column.get(column)
        if r is None:
            n_row.append("–")
        elif r["n_test"] < r["n_test_available"]:
            n_row.append(f"{r['n_test']} of {r['n_test_available']}")
        else:
            n_row.append(str(r["n_test"]))
    subset = (f"a fixed subset of at most {config.test_limit} examples of each test set (seed {config.subset_seed}; "
              "the same subset for every method)" if config.test_limit else "the full test sets")
    trained = any(m.kind != "zero_shot" for m in config.methods)
    lines += [
        f"Command: `{command}`",
        "",
        f"Accuracy ×100 on {subset}. "
        + ("Trained methods: mean (std) over the seeds " + ", ".join(map(str, config.seeds)) + "; std is the "
           "population standard deviation (ddof=0), as LM-BFF reports it; `[n/N]` marks a cell with only n of its N "
           "seeds done. " if trained else "")
        + ("Zero-shot rows are one run (no training, no seed). " if any(m.kind == "zero_shot" for m in config.methods)
           else "")
        + ("K = examples per class for training (and as many for the dev set that selects the checkpoint). "
           if trained else "")
        + ("Columns `A → B`: trained on A, tested on B. " if config.test_tasks else ""),
        "",
    ]
    lines[-2] = lines[-2].rstrip()
    for k in config.ks:
        if len(config.ks) > 1:
            lines += [f"## K = {k}", ""]
        elif trained:
            lines += [f"K = {k}.", ""]
        lines += ["| method | " + " | ".join(names) + " | avg |", "|---" * (len(names) + 2) + "|",
                  "| *test examples* | " + " | ".join(n_row) + " | |"]
        for row_name, method in config.rows():
            row = stats[k][row_name]
            cells = [row[c].cell() for c in columns]
            complete = all(row[c].values and len(row[c].values) == row[c].expected for c in columns)
            avg = f"{100 * np.mean([row[c].mean for c in columns]):.1f}" if complete else "–"
            if skipped and method.name in skipped and not any(row[c].values for c in columns):
                cells = ["skipped"] * len(columns)
            lines.append(f"| {row_name} | " + " | ".join(cells) + f" | {avg} |")
        lines.append("")
    if len(config.ks) > 1:
        lines += (["![accuracy vs K](k_sweep.png)", ""] if plot_note is None else [f"Plot: {plot_note}", ""])
    if skipped:
        lines += [f"- `{name}` skipped: {why}" for name, why in skipped.items()] + [""]
    lines += _wall_time_lines(config, seen)
    lines += _search_choice_lines(config, seen)
    lines += _prompt_spread_lines(config, seen)
    lines += _footprint_lines(config, seen)
    lines += ["Methods:", ""]
    templates: dict[str, set[str]] = {}
    for result in seen:
        for prompt in [result.get("prompt") or {}] + list(result.get("prompts") or []):
            if prompt.get("template"):
                templates.setdefault(result.get("method_entry", result["method"]), set()).add(
                    f"`{prompt['template']}` + `{prompt.get('verbalizer')}`")
    for method in config.methods:
        params = {k: v for k, v in method.params.items()}
        text = f"- `{method.name}` ({method.kind})"
        model = config.model_for(method)
        if model is not None:
            text += f", model `{model}`"
        if params:
            text += ", " + ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())
        if method.template or method.verbalizer:
            text += f", template {method.template!r}, verbalizer {method.verbalizer!r}"
        if method.name in templates:
            text += "; prompts: " + ", ".join(sorted(templates[method.name]))
        if method.rows() != [method.name]:
            text += "; rows: " + ", ".join(f"`{row}`" for row in method.rows())
        lines.append(text)
    envs = {json.dumps({k: v for k, v in r["environment"].items() if k not in ("setfit", "sentence-transformers")},
                       sort_keys=True) for r in seen if r.get("environment")}
    extra = {}
    for r in seen:
        for name in ("setfit", "sentence-transformers"):
            if name in (r.get("environment") or {}):
                extra[name] = r["environment"][name]
    lines.append("")
    if envs:
        parsed = [json.loads(text) for text in sorted(envs)]
        env = dict(parsed[0], **extra)
        differing = {}
        for key in sorted({key for e in parsed for key in e}):
            values = {json.dumps(e.get(key)) for e in parsed}
            if len(values) > 1:
                differing[key] = ", ".join(sorted(values))
        lines.append(f"Environment: {_env_line(env)}." + (
            " Not every cell ran the same way: " + "; ".join(f"`{k}` {v}" for k, v in differing.items())
            + " (each cell's JSON says which)." if differing else ""))
    lines.append(f"Raw per-run JSON: `{config.name}/<method>/<task>-k<K>-s<seed>.json` under the results folder "
                 "(zero-shot: `<task>-k0.json`); each holds the command that reproduces it.")
    return "\n".join(lines).rstrip() + "\n"


def write_plot(config: Config, results: Path) -> str | None:
    """``k_sweep.png``: accuracy vs K per method, one panel per column; returns a note when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"skipped: matplotlib is not installed ({BENCH_HINT})"
    stats, _ = collect(config, results)
    columns = config.columns()
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    ks = sorted(config.ks)
    for ax, column in zip(axes[0], columns):
        for number, (row_name, method) in enumerate(config.rows()):
            color = f"C{number % 10}"
            if method.kind == "zero_shot":
                stat = stats[ks[0]][row_name][column]
                if stat.values:
                    ax.axhline(100 * stat.mean, linestyle="--", color=color, label=row_name)
                continue
            points = [(k, stats[k][row_name][column]) for k in ks if stats[k][row_name][column].values]
            if points:
                ax.errorbar([k for k, _ in points], [100 * s.mean for _, s in points],
                            yerr=[100 * s.std for _, s in points], marker="o", capsize=3, color=color,
                            label=row_name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("K (examples per class)")
        ax.set_title(_column_name(*column))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy ×100 (mean ± std over seeds)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    target = results / config.name / "k_sweep.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(target)
    return None
