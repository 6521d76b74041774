"""Shared helpers of the benchmark scripts: environment facts and atomic JSON results."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    """Library versions and machine facts that a reader needs to compare figures."""
    import torch
    import transformers

    import promptlearn

    return {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "promptlearn": promptlearn.__version__, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "machine": platform.machine(),
    }


def write_result(name: str, result: dict[str, Any], *, command: str | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically (temp file + rename)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = dict(result)
    result["command"] = command or " ".join(["python", "-m", f"benchmarks.{Path(sys.argv[0]).stem}", *sys.argv[1:]])
    target = RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    print(f"wrote {target}", file=sys.stderr)
    return target
