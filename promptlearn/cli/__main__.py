"""``python -m promptlearn.cli``: the ``promptlearn`` command, as ``python -m promptlearn``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
