"""What a stage last built, next to its outputs: ``venvdeb-build.json``.

The check and publish stages read it to know the current files of a project,
a requirements package or the venvdeb package without resolving anything again;
a project's build reads its requirements package's record instead of planning it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core.errors import ConfigError, StateFileError
from venvdeb.core.files import read_json, write_if_changed
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir

NAME = "venvdeb-build.json"
TOOL_PACKAGE = "venvdeb"


@dataclass(frozen=True)
class BuildRecord:
    source: str
    version: str  # with epoch
    dsc: Path | None  # None: a binary-only build (the requirements package)
    changes: Path
    debs: tuple[Path, ...]
    closure: tuple[str, ...] = ()  # name==version of the wheels a project's venv holds
    #: the requirements package: its binary package name (the source's, for the others)
    package: str = ""
    #: the requirements package: the sha256 of the lock it was built from
    inputs: str = ""

    @property
    def files(self) -> tuple[Path, ...]:
        return (*self.debs, *((self.dsc,) if self.dsc else ()))

    @property
    def complete(self) -> bool:
        return all(f.exists() for f in (*self.files, self.changes))


def write(out_dir: Path, record: BuildRecord) -> None:
    data = {"source": record.source, "version": record.version,
            "dsc": record.dsc.name if record.dsc else None, "changes": record.changes.name,
            "debs": [d.name for d in record.debs], "closure": list(record.closure)}
    if record.package:
        data["package"] = record.package
    if record.inputs:
        data["inputs"] = record.inputs
    write_if_changed(out_dir / NAME, json.dumps(data, indent=1) + "\n")


def read(out_dir: Path, what: str, hint: str) -> BuildRecord:
    path = out_dir / NAME
    if not path.exists():
        raise ConfigError(f"{what} is not built ({path} is missing)", hint=hint)
    rebuild = f"delete it and {hint.removesuffix(' first')}" if hint else None
    data = read_json(path, hint=rebuild)
    try:
        return BuildRecord(data["source"], data["version"],
                           out_dir / data["dsc"] if data["dsc"] else None,
                           out_dir / data["changes"], tuple(out_dir / d for d in data["debs"]),
                           tuple(data.get("closure", ())), data.get("package", data["source"]),
                           data.get("inputs", ""))
    except (KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(f"{path} is not a build record (bad or missing {exc})",
                             hint=rebuild or "delete it and rebuild") from None


def find(out_dir: Path) -> BuildRecord | None:
    """The record in ``out_dir``, or None when nothing was built there."""
    return read(out_dir, "", "") if (out_dir / NAME).exists() else None


def project_record(work: Workdir, t: Target, name: str) -> BuildRecord:
    return read(work.project(t.release.name, t.distribution.name, name),
                f"{name} for {t.release.name}",
                hint=f"run 'venvdeb build {name} --release {t.release.name}' first")


def reqdeb_record(work: Workdir, t: Target) -> BuildRecord:
    return read(work.reqdeb(t.release.name, t.distribution.name),
                f"the requirements package of {t.release.name}",
                hint=f"run 'venvdeb reqdeb --release {t.release.name}' first")


def tool_record(work: Workdir, dist: str) -> BuildRecord:
    return read(work.tool(dist), f"the venvdeb package for {dist}",
                hint=f"run 'venvdeb tooldeb --dist {dist}' first")
