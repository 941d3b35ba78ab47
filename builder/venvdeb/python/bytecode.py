"""Which modules of a venv get bytecode on the node.

The venv package's postinst compiles the venv's modules (``compileall``), as
py3compile does for Debian's python3 packages, except those in a ``test`` or
``tests`` directory of an installed distribution: the wheels ship their test suites
(nova's venv: 2,913 of 8,210 modules, 34.5 of 95.4 MB of source), which no service
imports. Debian's own packages mostly leave them out; a venv package cannot (its
wheels stay as they are, their RECORD and the SBOM's hashes hold), so it ships them
uncompiled. One imported anyway runs all the same, compiled in memory each time.

One pattern for both sides: the postinst gives it to ``compileall -x`` (searched in
each module's full path), the install test counts by it.
"""
from __future__ import annotations

import re

#: ``compileall -x``: a module under a ``test``/``tests`` directory below site-packages.
UNCOMPILED = r"/site-packages/(.*/)?tests?/"

_UNCOMPILED = re.compile(UNCOMPILED)


def compiled_on_the_node(path: str) -> bool:
    """Whether the postinst compiles the module at ``path`` (absolute, on the node)."""
    return _UNCOMPILED.search(path) is None
