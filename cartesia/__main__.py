"""``python -m cartesia``: the same as the ``cartesia`` command."""

import sys

from cartesia.cli import main

if __name__ == "__main__":
    sys.exit(main())
