"""Search candidates, their ranking, and the files a search writes (templates, verbalizers, reports)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...io.artifacts import atomic_write_text
from ...core.errors import ConfigError, PromptlearnError

REPORT_FORMAT = "promptlearn.applications.search"
REPORT_VERSION = 1
_TASK_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass
class Candidate:
    """One prompt found by the search: a template (Jinja source), its label words, and its dev scores.

    ``zero_shot`` and ``calibrated`` are dev accuracies of the untrained model (raw, and with contextual
    calibration); ``log_likelihood`` is the mean log-probability of the right class (zero-shot), the
    tie-breaker; ``trained`` is the dev accuracy after short prompt-based fine-tuning, for the top few.
    """

    template: str
    label_words: dict[str, list[str]]
    source: str
    zero_shot: float | None = None
    calibrated: float | None = None
    log_likelihood: float | None = None
    trained: float | None = None
    seconds: float = 0.0

    @property
    def zero_shot_score(self) -> float:
        """The cheap score: the better of raw and calibrated zero-shot dev accuracy."""
        return max(v for v in (self.zero_shot, self.calibrated, -1.0) if v is not None)

    def sort_key(self) -> tuple:
        """Ascending key (best first): trained candidates first, then accuracy, then log-likelihood."""
        trained = self.trained is not None
        ll = self.log_likelihood if self.log_likelihood is not None and math.isfinite(self.log_likelihood) else -1e30
        return (not trained, -(self.trained or 0.0), -self.zero_shot_score, -ll)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("zero_shot", "calibrated", "trained"):
            out[key] = None if out[key] is None else round(float(out[key]), 6)
        out["log_likelihood"] = None if self.log_likelihood is None else round(float(self.log_likelihood), 6)
        out["seconds"] = round(float(self.seconds), 3)
        return out


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Best first: candidates scored after training (by trained accuracy), then the rest by zero-shot score;
    ties broken by log-likelihood, then by the order they were found in (stable)."""
    return sorted(candidates, key=lambda c: c.sort_key())


@dataclass
class SearchResult:
    """What :class:`~promptlearn.applications.search.PromptSearch` found: every candidate, ranked best first."""

    candidates: list[Candidate]
    classes: list[str]
    model: str
    method: str
    seed: int
    n_train: int
    n_dev: int
    settings: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    label_rankings: dict[str, Any] = field(default_factory=dict)  # template -> ranking -> class -> [(word, score)]

    def best(self, n: int = 1) -> list[Candidate]:
        return self.candidates[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT, "version": REPORT_VERSION, "model": self.model, "method": self.method,
            "seed": self.seed, "classes": list(self.classes), "n_train": self.n_train, "n_dev": self.n_dev,
            "settings": self.settings, "notes": list(self.notes),
            "stages": [{**s, "seconds": round(float(s.get("seconds", 0.0)), 3)} for s in self.stages],
            "seconds": round(float(self.seconds), 3),
            "candidates": [{"rank": i + 1, **c.to_dict()} for i, c in enumerate(self.candidates)],
            "label_rankings": [{"template": t, **{name: {c: [list(pair) for pair in words] for c, words in per.items()}
                                                  for name, per in r.items()}}
                               for t, r in self.label_rankings.items()],
        }


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("`", "'")


def markdown_report(result: SearchResult, task_name: str, written: dict[int, tuple[str, str]]) -> str:
    """The Markdown report: settings, stages, and every candidate ranked with its scores."""
    lines = [f"# Prompt search: {task_name}", "",
             f"- model: `{result.model}`", f"- method: {result.method}, seed {result.seed}",
             f"- data: {result.n_train} training and {result.n_dev} dev examples; classes: "
             + ", ".join(f"`{c}`" for c in result.classes),
             f"- time: {result.seconds:.1f} s"
             + "".join(f"; {s['name']} {s['seconds']:.1f} s ({s.get('candidates', 0)} candidates)"
                       for s in result.stages)]
    lines += [f"- note: {note}" for note in result.notes]
    lines += ["", "Scores are dev accuracies in %: zero-shot (raw), calibrated (contextual calibration), and after "
              "short prompt-based fine-tuning (the top candidates only). Candidates with a trained score rank "
              "first; ties are broken by the right class's mean log-probability.", ""]
    if written:
        lines += ["## Files", ""]
        for rank_, (template, verbalizer) in sorted(written.items()):
            lines.append(f"{rank_}. `{template}` with `{verbalizer}`")
        lines.append("")
    lines += ["## Candidates", "", "| rank | template | label words | zero-shot | calibrated | trained | source | s |",
              "|---:|---|---|---:|---:|---:|---|---:|"]
    for i, c in enumerate(result.candidates, start=1):
        words = "; ".join(f"{k}: {', '.join(v)}" for k, v in c.label_words.items())
        lines.append(f"| {i} | `{_cell(c.template)}` | {_cell(words)} | {_fmt(c.zero_shot)} | {_fmt(c.calibrated)} | "
                     f"{_fmt(c.trained)} | {c.source} | {c.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def _header(candidate: Candidate, rank_: int, verbalizer_path: str) -> str:
    scores = f"zero-shot {_fmt(candidate.zero_shot)} %, calibrated {_fmt(candidate.calibrated)} %"
    if candidate.trained is not None:
        scores += f", after short training {_fmt(candidate.trained)} %"
    text = (f"promptlearn search, rank {rank_} ({candidate.source}): dev accuracy {scores}. "
            f"Label words: {verbalizer_path}")
    return "{# " + text.replace("#}", "# }") + " #}\n"


def check_task_name(task_name: str) -> str:
    """``task_name`` if it can name the output files (letters, digits, ``_``, ``-``), else a ConfigError."""
    if not isinstance(task_name, str) or not _TASK_NAME.match(task_name):
        raise ConfigError(f"task name {task_name!r} must be letters, digits, '_' or '-' (it names files)")
    return task_name


def write_results(out_dir: str | Path, result: SearchResult, *, task_name: str = "task", n_templates: int = 3,
                  overwrite: bool = False) -> list[Path]:
    """Write the best ``n_templates`` prompts and the reports into ``out_dir``; returns the files written.

    ``templates/<task>/<rank>.j2`` (a header comment gives the source and the scores), and
    ``verbalizers/<task>_<rank>.json``, in the formats :meth:`Template.load` / :meth:`Verbalizer.load` read;
    ``report.md`` and ``report.json`` rank every candidate. Each file is written atomically, the JSON report
    last. An ``out_dir`` holding an earlier report is refused unless ``overwrite``; then the files that
    report lists are removed first (nothing else in the folder is touched).
    """
    check_task_name(task_name)
    if n_templates < 1:
        raise ConfigError(f"n_templates must be >= 1, got {n_templates}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PromptlearnError(f"{out} exists and is not a folder")
    report_path = out / "report.json"
    if report_path.exists():
        if not overwrite:
            raise PromptlearnError(f"{out} already holds a search report; choose another folder or overwrite it "
                                   "(--overwrite)")
        _remove_previous(out, report_path)
    written: dict[int, tuple[str, str]] = {}
    paths: list[Path] = []
    for rank_, candidate in enumerate(result.best(n_templates), start=1):
        template_rel = f"templates/{task_name}/{rank_}.j2"
        verbalizer_rel = f"verbalizers/{task_name}_{rank_}.json"
        paths.append(atomic_write_text(out / template_rel, _header(candidate, rank_, verbalizer_rel)
                                       + candidate.template + "\n"))
        paths.append(atomic_write_text(out / verbalizer_rel,
                                       json.dumps(candidate.label_words, indent=2, ensure_ascii=False) + "\n"))
        written[rank_] = (template_rel, verbalizer_rel)
    paths.append(atomic_write_text(out / "report.md", markdown_report(result, task_name, written)))
    report = result.to_dict()
    report["task"] = task_name
    report["files"] = [{"rank": r, "template": t, "verbalizer": v} for r, (t, v) in sorted(written.items())]
    paths.append(atomic_write_text(report_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n"))
    return paths


def _remove_previous(out: Path, report_path: Path) -> None:
    try:
        previous = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        previous = {}
    root = out.resolve()
    for entry in previous.get("files", []) if isinstance(previous, dict) else []:
        for key in ("template", "verbalizer"):
            rel = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(rel, str):
                continue
            path = (out / rel).resolve()
            if root in path.parents and path.is_file():
                path.unlink()
