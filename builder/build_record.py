"""What a stage last built, next to its outputs: ``venvdeb-build.json``.

The check and publish stages read it to know the current files of a project
or a requirements package without resolving anything again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ConfigError

NAME = "venvdeb-build.json"


@dataclass(frozen=True)
class BuildRecord:
    source: str
    version: str  # with epoch
    dsc: Path | None  # None: a binary-only build (the requirements package)
    changes: Path
    debs: tuple[Path, ...]
    closure: tuple[str, ...] = ()  # name==version of the wheels a project's venv holds

    @property
    def files(self) -> tuple[Path, ...]:
        return (*self.debs, *((self.dsc,) if self.dsc else ()))


def write(out_dir: Path, record: BuildRecord) -> None:
    data = {"source": record.source, "version": record.version,
            "dsc": record.dsc.name if record.dsc else None, "changes": record.changes.name,
            "debs": [d.name for d in record.debs], "closure": list(record.closure)}
    text = json.dumps(data, indent=1) + "\n"
    path = out_dir / NAME
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(NAME + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def read(out_dir: Path, what: str, hint: str) -> BuildRecord:
    path = out_dir / NAME
    if not path.exists():
        raise ConfigError(f"{what} is not built ({path} is missing)", hint=hint)
    data = json.loads(path.read_text())
    return BuildRecord(data["source"], data["version"],
                       out_dir / data["dsc"] if data["dsc"] else None,
                       out_dir / data["changes"], tuple(out_dir / d for d in data["debs"]),
                       tuple(data.get("closure", ())))
