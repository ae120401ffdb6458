"""``python -m genbench.cli``: the ``genbench`` command."""

import sys

from genbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
