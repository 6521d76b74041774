"""``python -m promptlearn``: the ``promptlearn`` command (also ``accelerate launch -m promptlearn train ...``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
