"""Run pip-tools' ``pip-compile``, taking file hashes from the index's links.

pip-compile ``--generate-hashes`` asks PyPI's JSON API for hashes, at an URL
it derives from the index URL (``https://pypi.org/simple`` gives
``https://pypi.org/<name>/json``, which does not exist); it then downloads
every file of every pinned version to hash it: gigabytes for a release. The
simple index already gives each file's sha256 in its link (PEP 503), so use
that and download only links that carry none. Run as
``python -m venvdeb.python.piptools_compile [pip-compile options]``.
"""
from __future__ import annotations

from typing import Any

from piptools.repositories import pypi
from piptools.scripts.compile import cli


def _patch() -> None:
    original = pypi.PyPIRepository._get_file_hash

    def _get_file_hash(self: Any, link: Any) -> str:
        if getattr(link, "hash_name", None) == "sha256" and link.hash:
            return f"sha256:{link.hash}"
        return str(original(self, link))

    pypi.PyPIRepository._get_file_hash = _get_file_hash  # type: ignore[method-assign]


if __name__ == "__main__":
    _patch()
    cli()
