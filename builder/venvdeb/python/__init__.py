"""The Python side: a release's pins (``constraints``), its hash-locked set (``lock``,
pip-tools), the package ``index``, the ``wheelhouse`` and ``sdist`` builds, a project's
``upstream`` source and its ``closure`` in the wheel repository; ``pip_run`` and
``piptools_compile`` are the pinned tools run as ``python3 -m``."""
