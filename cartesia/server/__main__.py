"""``python -m cartesia.server``: run the local API server."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
