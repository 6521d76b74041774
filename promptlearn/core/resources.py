"""Where the shipped templates and verbalizers live (inside an installed wheel, or at the repo root), and reading
a user's template or verbalizer file with a one-line error."""

from __future__ import annotations

from pathlib import Path

from .errors import PromptlearnError


def shipped_dir(kind: str) -> Path:
    """Folder of the shipped ``templates`` or ``verbalizers``."""
    here = Path(__file__).resolve().parent.parent  # the promptlearn package
    for candidate in (here / "_shipped" / kind, here.parent / kind):
        if candidate.is_dir():
            return candidate
    raise PromptlearnError(f"the shipped {kind} folder is missing next to {here}; reinstall promptlearn")


def read_text_file(path: Path, what: str, error: type[PromptlearnError]) -> str:
    """The UTF-8 text of ``what`` (e.g. ``template file``) at ``path``; ``error`` with one line when it is
    missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
