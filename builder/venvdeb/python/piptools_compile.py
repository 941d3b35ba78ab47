"""Run pip-tools' ``pip-compile``, taking file hashes from the index's links, with
the index pages and metadata of the pinned versions fetched at once first.

pip-compile ``--generate-hashes`` asks PyPI's JSON API for hashes, at an URL
it derives from the index URL (``https://pypi.org/simple`` gives
``https://pypi.org/<name>/json``, which does not exist); it then downloads
every file of every pinned version to hash it: gigabytes for a release. The
simple index already gives each file's sha256 in its link (PEP 503), so use
that and download only links that carry none.

The resolver asks for one project's index page, then its metadata, then the next
project's: one round trip after the other, about 1,100 for a release's 550 pins;
and it prepares the metadata of each pin that has only a sdist (a build environment
installed, then the backend's hook), one after the other: dozens in a release, most
of its time. With ``--venvdeb-prefetch N`` (venvdeb.python.lock.PREFETCH), before
resolving, N threads fetch through pip's own finder and session the index page of
every project the inputs pin (kept in the finder, which the resolver asks first) and
the PEP 658 metadata of the pinned version's wheel (kept in memory, where the
resolver's own fetch of it finds it, its hash still checked by pip); from the
resolver's first call on, the resolver's own preparer prepares the sdist-only pins'
metadata a few at once in threads, and the resolver, reaching one, takes its
metadata directory (waiting for it if need be) instead of preparing it again. The
resolver still decides everything; a prefetch that fails is left for it to retry
and report. All of it runs where pip-compile runs: as the sandbox user, in its
scratch directory. Run as ``python -m venvdeb.python.piptools_compile
[--venvdeb-prefetch N] [pip-compile options]``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
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


def prefetch(finder: Any, session: Any, pins: dict[str, str], workers: int
             ) -> list[tuple[str, str, Any]]:
    """Each pin's index page into ``finder``, its wheel's metadata into ``FETCHED``;
    the pins whose best file is a sdist: ``(name, version, link)``."""
    from pip._internal.network.utils import HEADERS

    # pip's own packaging: the finder compares with its classes
    from pip._vendor.packaging.specifiers import SpecifierSet

    def one(item: tuple[str, str]) -> tuple[str, str, Any] | None:
        name, version = item
        try:
            best = finder.find_best_candidate(name, SpecifierSet(f"=={version}")).best_candidate
            if best is None:
                return None
            if not best.link.is_wheel:
                return name, version, best.link
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


#: the sdist-only pins' metadata being prepared ahead: link (no fragment) -> the
#: metadata directory (None: left to the resolver)
SDISTS: dict[str, Future[str | None]] = {}
#: the links whose metadata the resolver took from SDISTS
TAKEN: list[str] = []
_THREAD = threading.local()


def _patch_sdists(links: list[tuple[str, str, Any]], workers: int) -> None:
    """The metadata of each sdist-only pin prepared by the resolver's own preparer (its
    build environment, build constraints and backend hook, as the resolver would), a
    few at once in threads, from the resolver's first call on: the resolver, reaching
    the sdist, takes the metadata directory when it is ready instead of preparing it
    again, one after the other. A preparation that fails is left to the resolver,
    which prepares it again and reports."""
    from pip._internal.distributions.sdist import SourceDistribution
    from pip._internal.req.constructors import install_req_from_line
    from pip._internal.resolution.resolvelib.resolver import Resolver

    if getattr(Resolver.resolve, "venvdeb", False):  # patched already
        return

    def ahead(preparer: Any, name: str, version: str, link: Any) -> str | None:
        _THREAD.ahead = True
        try:
            req = install_req_from_line(f"{name}=={version}", user_supplied=False)
            req.link = link
            req.set_source_link(link)
            preparer.prepare_linked_requirement(req, parallel_builds=True)
            return req.metadata_directory
        except Exception:  # noqa: BLE001 (the resolver prepares it again and reports)
            return None

    original_resolve = Resolver.resolve
    started: list[bool] = []

    def resolve(self: Any, *args: Any, **kwargs: Any) -> Any:
        if started or not links:
            return original_resolve(self, *args, **kwargs)
        started.append(True)
        start = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sdists")
        for name, version, link in links:
            SDISTS[link.url_without_fragment] = pool.submit(
                ahead, self.factory.preparer, name, version, link)
        try:
            return original_resolve(self, *args, **kwargs)
        finally:
            # the metadata directories live in the resolver's build directory, removed
            # after it: nothing prepared ahead outlives this call
            pool.shutdown(wait=True, cancel_futures=True)
            used = sum(1 for f in SDISTS.values() if f.done() and not f.cancelled()
                       and f.exception() is None and f.result() is not None)
            SDISTS.clear()
            print(f"venvdeb: prepared the metadata of {used} of {len(links)} sdist-only "
                  f"pins ahead ({workers} at once) while resolving, {len(TAKEN)} taken by "
                  f"the resolver: {time.monotonic() - start:.1f} s", file=sys.stderr,
                  flush=True)

    resolve.venvdeb = True  # type: ignore[attr-defined]
    Resolver.resolve = resolve  # type: ignore[method-assign]

    original_metadata = SourceDistribution.prepare_distribution_metadata
    original_id = vars(SourceDistribution)["build_tracker_id"].fget

    def prepare_distribution_metadata(self: Any, *args: Any, **kwargs: Any) -> None:
        future = (None if getattr(_THREAD, "ahead", False) or self.req.link is None
                  else SDISTS.get(self.req.link.url_without_fragment))
        directory = None
        if future is not None:
            try:
                directory = future.result()
            except Exception:  # noqa: BLE001 (cancelled or failed: prepared here)
                directory = None
        if directory is None or not os.path.isdir(directory):
            return original_metadata(self, *args, **kwargs)
        self.req.load_pyproject_toml()
        self.req.metadata_directory = directory
        self.req.assert_source_matches_version()
        TAKEN.append(self.req.link.url_without_fragment)
        return None

    def build_tracker_id(self: Any) -> str | None:
        # the same sdist prepared ahead and by the resolver: two tracker entries
        key = original_id(self)
        return f"{key}#venvdeb-ahead" if getattr(_THREAD, "ahead", False) else key

    SourceDistribution.prepare_distribution_metadata = (  # type: ignore[method-assign]
        prepare_distribution_metadata)
    SourceDistribution.build_tracker_id = property(build_tracker_id)  # type: ignore[assignment,method-assign]


def _version_of(filename: str) -> Any:
    """The version a wheel's or sdist's file name gives (pip's packaging), or None
    when the name does not parse (such a link is left to pip to judge)."""
    from pip._vendor.packaging.utils import parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except Exception:  # noqa: BLE001 (InvalidWheelFilename, InvalidSdistFilename, ...)
        return None


def _pinned_version(ireq: Any) -> Any:
    """The version an exact pin (``==``) names (pip's packaging), or None."""
    from pip._vendor.packaging.version import InvalidVersion, Version

    specs = list(ireq.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
        return None
    try:
        return Version(specs[0].version)
    except InvalidVersion:
        return None


def _patch_prefetch(workers: int, inputs: list[Path]) -> None:
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
        if sdists:
            _patch_sdists(sdists, max(2, 2 * (os.cpu_count() or 1)))

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
    # after the other, each of its links evaluated (botocore's page has thousands; CPU,
    # not network). Here the pages are asked for at once, the links of other versions
    # than the pinned one left out before pip evaluates them, then hashed as before.
    def resolve_hashes(self: Any, ireqs: Any) -> Any:
        with self.repository.allow_all_wheels(), log.indentation():
            finder = self.repository.finder
            pins = {canonicalize_name(ireq.name): _pinned_version(ireq) for ireq in ireqs}
            evaluate_links = finder.evaluate_links

            def only_pinned(link_evaluator: Any, links: Any) -> Any:
                pin = pins.get(canonicalize_name(link_evaluator.project_name))
                return evaluate_links(link_evaluator, links if pin is None else [
                    link for link in links if _version_of(link.filename) in (None, pin)])

            def one(name: str) -> None:
                try:
                    finder.find_all_candidates(name)
                except Exception:  # noqa: BLE001 (asked again below, and reported)
                    pass

            finder.evaluate_links = only_pinned
            start = time.monotonic()
            try:
                with ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="hashes") as pool:
                    list(pool.map(one, sorted({ireq.name for ireq in ireqs})))
                hashes = {ireq: self.repository.get_hashes(ireq) for ireq in ireqs}
                print(f"venvdeb: hashed the files of {len(hashes)} pins (their pages "
                      f"{workers} at once): {time.monotonic() - start:.1f} s",
                      file=sys.stderr, flush=True)
                return hashes
            finally:
                # the class's method again, and no page's candidates kept filtered
                del finder.evaluate_links
                finder._all_candidates.clear()
                finder._best_candidates.clear()

    BaseResolver.resolve_hashes = resolve_hashes  # type: ignore[method-assign]

    # pip-tools first asks the JSON API for each pinned project's hashes, one project
    # after the other, at an URL that PyPI answers with 404 (above): 570 round trips,
    # 0.07-0.1 s each here. The index pages, fetched above, give each file's sha256 in
    # its link (PEP 503): _get_file_hash takes it from there, as it did after the 404.
    def _get_hashes_from_pypi(self: Any, ireq: Any) -> dict[str, str]:
        return {}

    pypi.PyPIRepository._get_hashes_from_pypi = _get_hashes_from_pypi  # type: ignore[method-assign]


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
        _patch_prefetch(workers, [*files, Path("constraints.txt")])
    from piptools.scripts.compile import cli

    sys.argv = [sys.argv[0], *rest]
    cli()


if __name__ == "__main__":
    main(sys.argv[1:])
