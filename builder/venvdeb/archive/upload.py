"""An upload: what one build hands the publisher, as Debian's buildds hand theirs
to the archive.

A directory of regular files: the build's ``.changes`` files, every file they
list, the ``.dsc`` files with every file they list, and ``venvdeb-checks.json``,
the lintian and install-test results of each ``.deb`` keyed by its sha256. A
worker makes it (``make``: ``venvdeb upload``) from its own workdir; the
publisher verifies it whole (``verify``: ``venvdeb accept``) before anything of
it is published: every listed file present and as listed (size, sha256), no
file that nothing lists, every ``.deb`` of the version its ``.changes`` says,
checked and passed. Anything else rejects the whole upload, naming the file.
"""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from debian import deb822
from debian.debfile import DebFile

from venvdeb.archive import repository
from venvdeb.core import check_records
from venvdeb.core import ledger as ledger_mod
from venvdeb.core.build_record import BuildRecord
from venvdeb.core.errors import PublishError
from venvdeb.core.files import sha256

CHECKS = "venvdeb-checks.json"
#: the check an unprivileged worker leaves to the publisher (a booted node needs root)
DEFERRABLE = "install"
#: a file name a .changes or .dsc may list: Debian's package file names, no path
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_-]*")


class UploadRejected(PublishError):
    """An upload that is not whole, not as its .changes says, or not checked: nothing
    of it is published."""


@dataclass(frozen=True)
class Listed:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Upload:
    directory: Path
    changes: tuple[Path, ...]
    dscs: tuple[Path, ...]
    debs: tuple[Path, ...]
    #: sha256 -> {check: result} for each .deb, as the worker recorded them
    results: Mapping[str, Mapping[str, str]]
    #: (source, version) of each .changes
    sources: tuple[tuple[str, str], ...]
    #: the Distribution of each .changes, in the order of ``changes``
    distributions: tuple[str, ...]

    @property
    def deferred(self) -> tuple[Path, ...]:
        """The .debs whose install test the worker left to the publisher."""
        return tuple(d for d in self.debs
                     if self.results.get(sha256(d), {}).get(DEFERRABLE) == "deferred")

    @property
    def files(self) -> tuple[Path, ...]:
        """What goes into the repository: the .debs and the .dscs (with their files)."""
        return (*self.debs, *self.dscs)


def _listed(paragraph: deb822.Deb822, shown: Path) -> tuple[Listed, ...]:
    entries = paragraph.get("Checksums-Sha256") or []
    if not entries:
        raise UploadRejected(f"{shown.name} lists no files (no Checksums-Sha256)",
                             hint="rebuild and upload again")
    out = []
    for entry in entries:
        name = str(entry.get("name", ""))
        if not FILE_NAME.fullmatch(name):
            raise UploadRejected(f"{shown.name} lists a file name that is not a package "
                                 f"file's: {name!r}", hint="rebuild and upload again")
        try:
            out.append(Listed(name, int(entry["size"]), str(entry["sha256"]).lower()))
        except (KeyError, ValueError):
            raise UploadRejected(f"{shown.name}: a bad Checksums-Sha256 line for {name}",
                                 hint="rebuild and upload again") from None
    return tuple(out)


def _parse(path: Path, kind: type[deb822.Deb822]) -> deb822.Deb822:
    try:
        with path.open(encoding="utf-8") as handle:
            return kind(handle)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UploadRejected(f"{path.name} cannot be read ({exc})",
                             hint="rebuild and upload again") from None


def _verify_file(directory: Path, listed: Listed, by: str) -> Path:
    path = directory / listed.name
    if not path.is_file() or path.is_symlink():
        raise UploadRejected(f"{listed.name}, listed in {by}, is missing from the upload",
                             hint="upload the whole build again")
    size = path.stat().st_size
    if size != listed.size or sha256(path) != listed.sha256:
        raise UploadRejected(f"{listed.name} is not the file {by} lists (size {size}, "
                             f"expected {listed.size}; or its sha256 differs): changed or cut "
                             f"short since the build", hint="upload the whole build again")
    return path


def verify(directory: Path) -> Upload:
    """The upload in ``directory``, whole and as listed, every .deb checked and passed;
    otherwise ``UploadRejected`` naming the first file at fault. Reads only."""
    if not directory.is_dir():
        raise UploadRejected(f"{directory}: no upload there", hint="upload the build first")
    present = {p.name: p for p in sorted(directory.iterdir())}
    for name, path in present.items():
        if path.is_symlink() or not path.is_file():
            raise UploadRejected(f"{name} in the upload is not a regular file",
                                 hint="an upload holds regular files only: upload again")
    changes = tuple(p for n, p in present.items() if n.endswith(".changes"))
    if not changes:
        raise UploadRejected(f"{directory} holds no .changes", hint="upload the build again")
    accounted = {CHECKS, *(p.name for p in changes)}
    debs: list[Path] = []
    dscs: list[Path] = []
    sources = []
    distributions = []
    for path in changes:
        para = _parse(path, deb822.Changes)
        source, version = str(para.get("Source", "")), str(para.get("Version", ""))
        if not source or not version:
            raise UploadRejected(f"{path.name} has no Source or Version",
                                 hint="rebuild and upload again")
        sources.append((source.split()[0], version))
        distributions.append(str(para.get("Distribution", "")))
        for listed in _listed(para, path):
            found = _verify_file(directory, listed, path.name)
            accounted.add(listed.name)
            if found.suffix == ".deb":
                _same_version(found, version, path.name)
                debs.append(found)
            elif found.suffix == ".dsc":
                dscs.append(found)
    for path in (p for n, p in present.items() if n.endswith(".dsc")):
        if path not in dscs:
            dscs.append(path)
            accounted.add(path.name)
        for listed in _listed(_parse(path, deb822.Dsc), path):
            _verify_file(directory, listed, path.name)
            accounted.add(listed.name)
    unlisted = sorted(set(present) - accounted)
    if unlisted:
        raise UploadRejected(f"{unlisted[0]} is in the upload but in no .changes or .dsc",
                             hint="upload only what the build's .changes lists")
    results = _results(directory / CHECKS)
    for deb in debs:
        digest = sha256(deb)
        for check in check_records.CHECKS:
            got = results.get(digest, {}).get(check)
            if got != "passed" and not (check == DEFERRABLE and got == "deferred"):
                state = "failed" if got == "failed" else "not passed"
                raise UploadRejected(f"{deb.name} has {state} {check} on the worker: refusing "
                                     f"the upload", hint="fix it, check it and upload again")
    return Upload(directory, changes, tuple(dscs), tuple(debs), results, tuple(sources),
                  tuple(distributions))


def _same_version(deb: Path, version: str, changes: str) -> None:
    try:
        control = DebFile(str(deb)).debcontrol()
    except Exception as exc:  # python-debian raises many kinds on a damaged archive
        raise UploadRejected(f"{deb.name} is not a valid deb ({exc.__class__.__name__})",
                             hint="rebuild and upload again") from None
    if control.get("Version") != version:
        raise UploadRejected(f"{deb.name} is version {control.get('Version')}, its {changes} "
                             f"says {version}", hint="rebuild and upload again")


def _results(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        raise UploadRejected(f"the upload has no {CHECKS} (the lintian and install-test "
                             f"results)", hint="upload with 'venvdeb upload', which adds it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UploadRejected(f"{CHECKS} cannot be read ({exc})", hint="upload again") from None
    if not isinstance(data, dict):
        raise UploadRejected(f"{CHECKS} holds no results", hint="upload again")
    out: dict[str, dict[str, str]] = {}
    for digest, entry in data.items():
        if isinstance(entry, dict):
            out[str(digest)] = {c: str(entry.get(c, "")) for c in check_records.CHECKS}
    return out


def make(dest: Path, records: Sequence[BuildRecord], checks: Path) -> Upload:
    """Copy each build's .changes with the files it lists, and its .dsc with the files
    that lists, into ``dest`` (emptied first), with the .debs' check results from the
    ``checks`` ledger; verified as the publisher will verify it."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for record in records:
        for path in _build_files(record):
            if not (dest / path.name).exists():
                repository.copy_regular(path, dest / path.name)
    data = ledger_mod.read(checks)
    results: dict[str, dict[str, str]] = {}
    for deb in dest.glob("*.deb"):
        digest = sha256(deb)
        entry = data.get(digest, {})
        results[digest] = {"file": deb.name, **{
            c: str(entry[c]["result"]) for c in check_records.CHECKS
            if isinstance(entry.get(c), dict)}}
    (dest / CHECKS).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return verify(dest)


def _build_files(record: BuildRecord) -> Iterable[Path]:
    yield record.changes
    base = record.changes.parent
    for listed in _listed(_parse(record.changes, deb822.Changes), record.changes):
        yield base / listed.name
    if record.dsc is not None:
        yield record.dsc
        for listed in _listed(_parse(record.dsc, deb822.Dsc), record.dsc):
            yield record.dsc.parent / listed.name
