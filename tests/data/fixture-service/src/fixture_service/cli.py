"""Commands of fixture-service."""
import sys

import fixture_lib

from fixture_service import __version__


def manage() -> int:
    if "--version" in sys.argv[1:]:
        print(f"fixture-manage {__version__}")
        return 0
    unknown = [a for a in sys.argv[1:] if a.startswith("-")]
    if unknown:
        print(f"fixture-manage: error: unknown option {unknown[0]}", file=sys.stderr)
        return 2
    print(f"fixture-manage {__version__} with fixture-lib {fixture_lib.__version__}: "
          f"running from {sys.prefix}")
    return 0


def serve() -> int:
    print(f"fixture-service {__version__} would serve from {sys.prefix}")
    return 0
