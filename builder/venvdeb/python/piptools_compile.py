"""Run pip-tools' ``pip-compile``, taking file hashes from the index's links, with
the index pages and metadata of the pinned versions fetched at once first.

pip-compile ``--generate-hashes`` asks PyPI's JSON API for hashes, at an URL
it derives from the index URL (``https://pypi.org/simple`` gives
``https://pypi.org/<name>/json``, which does not exist); it then downloads
every file of every pinned version to hash it: gigabytes for a release. The
simple index already gives each file's sha256 in its link (PEP 503), so use
that and download only links that carry none.

The resolver asks for one project's index page, then its metadata, then the next
project's: one round trip after the other, about 1,100 for a release's 550 pins.
With ``--venvdeb-prefetch N`` (venvdeb.python.lock.PREFETCH), before resolving, N
threads fetch through pip's own finder and session the index page of every
project the inputs pin (kept in the finder, which the resolver asks first) and the
PEP 658 metadata of the pinned version's wheel (kept in memory, where the
resolver's own fetch of it finds it, its hash still checked by pip); a pin that has only a sdist is built,
a few at once, into pip's wheel cache, where the resolver finds it instead of
preparing the sdist's metadata in a build environment of its own, one after the
other (a release has dozens). The resolver still decides everything; a prefetch
that fails is left for it to retry and report. All of it runs where pip-compile
runs: as the sandbox user, in its scratch directory. Run as ``python -m
venvdeb.python.piptools_compile [--venvdeb-prefetch N] [pip-compile options]``.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

PREFETCH_OPTION = "--venvdeb-prefetch="


def _patch_hashes() -> None:
    from piptools.repositories import pypi

    original = pypi.PyPIRepository._get_file_hash

    def _get_file_hash(self: Any, link: Any) -> str:
        if getattr(link, "hash_name", None) == "sha256" and link.hash:
            return f"sha256:{link.hash}"
        return str(original(self, link))

    pypi.PyPIRepository._get_file_hash = _get_file_hash  # type: ignore[method-assign]


def pinned_text(text: str) -> dict[str, str]:
    """``name==version`` (or ``===``) lines of pip-compile's inputs (requirements.in,
    constraints.txt) as canonical name -> version; comments, options and ranges are
    skipped. (venvdeb.python.lock reads its inputs with it too: this module imports
    piptools only where it patches it, so that it runs as a script where venvdeb is
    not installed, and loads fast where it is.)"""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "==="):
            out[canonicalize_name(req.name)] = specs[0].version
    return out


def pinned(paths: list[Path]) -> dict[str, str]:
    """``name -> version`` of every pin in those of ``paths`` that exist."""
    found: dict[str, str] = {}
    for path in paths:
        if path.exists():
            found.update(pinned_text(path.read_text()))
    return found


#: PEP 658 metadata fetched ahead: its URL (no fragment) -> its bytes. pip's HTTP cache
#: would keep it only where the server says it may (a mirror may send no Cache-Control).
FETCHED: dict[str, bytes] = {}


def prefetch(finder: Any, session: Any, pins: dict[str, str], workers: int) -> list[str]:
    """Each pin's index page into ``finder``, its wheel's metadata into ``FETCHED``;
    the pins (``name==version``) whose best file is a sdist."""
    from pip._internal.network.utils import HEADERS

    # pip's own packaging: the finder compares with its classes
    from pip._vendor.packaging.specifiers import SpecifierSet

    def one(item: tuple[str, str]) -> str | None:
        name, version = item
        try:
            best = finder.find_best_candidate(name, SpecifierSet(f"=={version}")).best_candidate
            if best is None:
                return None
            if not best.link.is_wheel:
                return f"{name}=={version}"
            meta = best.link.metadata_link()
            if meta is not None:
                url = meta.url.split("#", 1)[0]
                response = session.get(url, headers=HEADERS)
                if response.status_code == 200:
                    FETCHED[url] = response.content
        except Exception:  # noqa: BLE001 (the resolver asks again, and says what failed)
            pass
        return None

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch") as pool:
        return [pin for pin in pool.map(one, sorted(pins.items())) if pin]


def build_sdists(pins: list[str], pip_args: list[str], cache_dir: str, workers: int) -> int:
    """Each sdist-only pin built into pip's wheel cache by ``pip wheel --no-deps``, a
    few at once: the resolver then reads its metadata from the cached wheel instead of
    making a build environment for it, one after the other. The same interpreter,
    index, options and cache as the resolver's pip; a build that fails is left to the
    resolver, which builds it again and reports. How many were built."""
    def one(pin: str) -> bool:
        with tempfile.TemporaryDirectory(prefix="venvdeb-prefetch-") as out:
            argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--disable-pip-version-check", "--cache-dir", cache_dir, *pip_args,
                    "--wheel-dir", out, pin]
            return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  check=False).returncode == 0

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sdists") as pool:
        return sum(pool.map(one, pins))


def _patch_prefetch(workers: int, inputs: list[Path], pip_args: list[str]) -> None:
    from piptools.logging import log
    from piptools.repositories import pypi
    from piptools.resolver import BaseResolver

    original = pypi.PyPIRepository.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        pins = pinned(inputs)
        if not pins:
            return
        start = time.monotonic()
        sdists = prefetch(self.finder, self.session, pins, workers)
        fetched = time.monotonic()
        print(f"venvdeb: prefetched the index pages and metadata of {len(pins)} pins "
              f"({workers} at once): {fetched - start:.1f} s", file=sys.stderr, flush=True)
        if sdists and self.options.cache_dir:
            jobs = max(2, 2 * (os.cpu_count() or 1))
            built = build_sdists(sdists, pip_args, self.options.cache_dir, jobs)
            print(f"venvdeb: built {built} of {len(sdists)} sdist-only pins into pip's wheel "
                  f"cache ({jobs} at once): {time.monotonic() - fetched:.1f} s",
                  file=sys.stderr, flush=True)

    pypi.PyPIRepository.__init__ = __init__  # type: ignore[method-assign]

    # The resolver's fetch of a metadata file fetched ahead reads it from FETCHED (into
    # its own temporary directory; pip still checks its hash against the index's link).
    from pip._internal.operations import prepare
    original_get = prepare.get_http_url

    def get_http_url(link: Any, download: Any, download_dir: Any = None,
                     hashes: Any = None) -> Any:
        body = FETCHED.pop(link.url.split("#", 1)[0], None)
        if body is None:
            return original_get(link, download, download_dir, hashes)

        def from_memory(link: Any, location: str) -> tuple[str, None]:
            path = os.path.join(location, link.filename)
            with open(path, "wb") as handle:
                handle.write(body)
            return path, None

        return original_get(link, from_memory, download_dir, hashes)  # type: ignore[arg-type]

    prepare.get_http_url = get_http_url

    # The hashes: pip-tools lists every file of each pinned version (all platforms'
    # wheels), asking the finder again after clearing it: the same pages again, one
    # after the other. Here they are asked for at once, then hashed as before.
    def resolve_hashes(self: Any, ireqs: Any) -> Any:
        with self.repository.allow_all_wheels(), log.indentation():
            finder = self.repository.finder

            def one(name: str) -> None:
                try:
                    finder.find_all_candidates(name)
                except Exception:  # noqa: BLE001 (asked again below, and reported)
                    pass

            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hashes") as pool:
                list(pool.map(one, sorted({ireq.name for ireq in ireqs})))
            return {ireq: self.repository.get_hashes(ireq) for ireq in ireqs}

    BaseResolver.resolve_hashes = resolve_hashes  # type: ignore[method-assign]


def _pip_options(argv: list[str]) -> list[str]:
    """What pip-compile gives its pip: the index and ``--pip-args``."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg in ("--index-url", "-i") and i + 1 < len(argv):
            out += ["--index-url", argv[i + 1]]
        elif arg.startswith("--pip-args="):
            out += shlex.split(arg[len("--pip-args="):])
    return out


def main(argv: list[str]) -> None:
    workers = 0
    rest = []
    for arg in argv:
        if arg.startswith(PREFETCH_OPTION):
            workers = int(arg[len(PREFETCH_OPTION):])
        else:
            rest.append(arg)
    _patch_hashes()
    if workers > 0:
        files = [Path(a) for a in rest if a.endswith(".in") and not a.startswith("-")]
        _patch_prefetch(workers, [*files, Path("constraints.txt")], _pip_options(rest))
    from piptools.scripts.compile import cli

    sys.argv = [sys.argv[0], *rest]
    cli()


if __name__ == "__main__":
    main(sys.argv[1:])
