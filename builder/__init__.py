"""venvdeb: OpenStack services as virtualenvs inside Debian packages."""
from __future__ import annotations

import sys
from pathlib import Path

__version__ = "0.1.0"
__all__ = ["__version__"]

# The venvdeb Debian package brings pip-tools, pip, build, click and packaging
# at the versions the checkout's .venv pins (Debian lacks or predates them):
# they come first for the tool and for the ``python3 -m builder.*`` helpers it
# runs. A checkout has no such directory.
_VENDOR = Path(__file__).resolve().parent / "_vendor"
if _VENDOR.is_dir() and str(_VENDOR) not in sys.path:
    sys.path.insert(0, str(_VENDOR))
