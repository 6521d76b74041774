"""How long a ``promptlearn`` command takes from launch until it starts scoring (issue 33's start-up figure).

Each run is a fresh ``python`` process that runs the CLI with the given arguments and notes the time of the first
call of :meth:`PromptPipeline.log_probs` (the first prediction's scoring); the figure is that moment measured
from just before the process was started. Run it twice in a row after a first call has filled the GGUF cache:

    python -m benchmarks.startup --runs 5 --save           # the README walkthrough's evaluate, 2 rows of WiC
    python -m benchmarks.startup --runs 5 -- classify --template sst2/review --text "Great."
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TEMPLATE = ('Sentence 1: {{ sentence1 }}\nSentence 2: {{ sentence2 }}\nQuestion: Is the word "{{ word }}" used with '
            'the same meaning in both sentences? Yes or No?\nAnswer: [MASK]')
DEFAULT = ["evaluate", "--data", str(Path(__file__).resolve().parent.parent.parent / "shared/data/superglue/WiC/val.jsonl"),
           "--head", "2", "--template", TEMPLATE, "--verbalizer", '{"different": ["No"], "same": ["Yes"]}',
           "--label-map", "false=different,true=same", "-q"]
# Runs in the child: time the first scoring call, then run the command as `promptlearn` would.
CHILD = """
import sys, time
import promptlearn.pipeline.pipeline as pipeline
original = pipeline.PromptPipeline.log_probs
def first(self, *args, **kwargs):
    if not getattr(first, "seen", False):
        first.seen = True
        print(f"STARTUP {time.time():.6f} sklearn={'sklearn' in sys.modules}", file=sys.stderr, flush=True)
    return original(self, *args, **kwargs)
pipeline.PromptPipeline.log_probs = first
from promptlearn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def measure(arguments: list[str]) -> tuple[float, bool]:
    """Seconds from launch to the first scoring call, and whether scikit-learn was imported by then."""
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", CHILD, *arguments], capture_output=True, text=True)
    for line in done.stderr.splitlines():
        if line.startswith("STARTUP "):
            stamp, flag = line.split()[1:3]
            return float(stamp) - launched, flag == "sklearn=True"
    raise SystemExit(f"the command never started scoring (exit status {done.returncode}):\n{done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes to time (default 5)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/startup.json (for RESULTS.md)")
    parser.add_argument("command", nargs="*", help="the promptlearn arguments (default: the README's evaluate)")
    args = parser.parse_args(argv)
    arguments = args.command or DEFAULT
    results = [measure(arguments) for _ in range(args.runs)]
    seconds = [s for s, _ in results]
    print("launch -> scoring starts: " + ", ".join(f"{s:.2f}" for s in seconds) + " s")
    print(f"median {statistics.median(seconds):.2f} s, min {min(seconds):.2f} s, max {max(seconds):.2f} s; "
          f"scikit-learn imported before scoring: {any(flag for _, flag in results)}")
    if args.save:
        from benchmarks.common import environment, write_result

        write_result("startup", {"arguments": arguments, "seconds": [round(s, 3) for s in seconds],
                                 "median": round(statistics.median(seconds), 3),
                                 "sklearn_before_scoring": any(flag for _, flag in results),
                                 "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
