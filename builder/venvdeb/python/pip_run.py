"""``python3 -m venvdeb.python.pip_run ARGS``: pip at the version the tool pins.

Importing ``venvdeb`` first puts the Debian package's vendored pip ahead of
Debian's python3-pip; from a checkout this is the .venv's pip.
"""
from __future__ import annotations

import sys

from pip._internal.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
