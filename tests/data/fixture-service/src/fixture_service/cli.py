"""Commands of fixture-service."""
import sys
import time

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
    """A daemon: runs until stopped (systemd's SIGTERM); ``--fail`` dies at once, as a
    service with a broken configuration does."""
    if "--version" in sys.argv[1:]:
        print(f"fixture-service {__version__}")
        return 0
    if "--fail" in sys.argv[1:]:
        print("fixture-service: cannot start: told to fail (--fail)", file=sys.stderr)
        return 1
    print(f"fixture-service {__version__} serving from {sys.prefix}", flush=True)
    while True:
        time.sleep(3600)
