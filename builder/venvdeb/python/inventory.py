"""What each distribution of a venv says of itself: name, version, the sha256 of the
exact file installed, its declared license and the SBOMs it carries (PEP 770).

Read from the files the venv is installed from (the release's wheels, the project's
orig tarball), never from a built venv: the SBOM is made with the source package,
before the offline build. The same files give the same items.
"""
from __future__ import annotations

import re
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import canonicalize_name

from venvdeb.core.errors import ConfigError
from venvdeb.core.files import sha256
from venvdeb.python.wheelhouse import Record

#: a license field longer than this, or of several lines, is a license's text, not a name
_NAME_MAX = 120


@dataclass(frozen=True)
class Item:
    """One distribution of the venv."""

    name: str          # canonical (PEP 503)
    version: str
    sha256: str        # of the wheel installed (the project: its orig tarball)
    file: str          # that file's name
    license: str       # License-Expression, else a short License field, else classifiers
    license_source: str  # "expression", "license", "classifier" or "" (none declared)
    dist_info: str     # the .dist-info directory the install makes
    sboms: tuple[str, ...] = ()  # PEP 770: paths under the .dist-info (sboms/...)

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)


def declared_license(meta: Message) -> tuple[str, str]:
    """``(license, where it came from)`` as core metadata declares it (PEP 639 first)."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression, "expression"
    field = (meta.get("License") or "").strip()
    if field and field.upper() != "UNKNOWN" and "\n" not in field and len(field) <= _NAME_MAX:
        return field, "license"
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or ()
                   if c.startswith("License ::") and c.count("::") >= 2]
    if classifiers:
        return " OR ".join(dict.fromkeys(classifiers)) if len(classifiers) > 1 \
            else classifiers[0], "classifier"
    return "", ""


def _dist_info_name(name: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"


def wheel_item(record: Record, wheel: Path) -> Item:
    """The item of one wheel of the repository (its METADATA and ``sboms/``)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            metas = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(metas) != 1:
                raise ConfigError(f"{wheel}: a wheel with {len(metas)} .dist-info/METADATA files",
                                  hint="rebuild the wheel repository (venvdeb wheels)")
            dist_info = metas[0].split("/", 1)[0]
            meta = HeaderParser().parsestr(archive.read(metas[0]).decode("utf-8", "replace"))
            sboms = tuple(sorted(n.split("/", 1)[1] for n in names
                                 if n.startswith(f"{dist_info}/sboms/") and not n.endswith("/")))
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{wheel}: not a readable wheel ({exc})",
                          hint="rebuild the wheel repository (venvdeb wheels)") from exc
    license_, where = declared_license(meta)
    return Item(record.name, record.version, record.sha256, record.file, license_, where,
                dist_info, sboms)


def sdist_item(name: str, version: str, tarball: Path, digest: str | None = None) -> Item:
    """The project's own item: its orig tarball's sha256 (``digest`` when the caller
    has it already) and its PKG-INFO's license (installed from that source, it has no
    wheel of the repository)."""
    meta = Message()
    try:
        with tarfile.open(tarball) as archive:
            for member in archive:
                if member.isfile() and member.name.count("/") == 1 and \
                        member.name.endswith("/PKG-INFO"):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        meta = HeaderParser().parsestr(handle.read().decode("utf-8", "replace"))
                    break
    except (OSError, tarfile.TarError) as exc:
        raise ConfigError(f"{tarball}: not a readable source tarball ({exc})",
                          hint="remove it from the cache and run again") from exc
    license_, where = declared_license(meta)
    canonical = canonicalize_name(name)
    return Item(canonical, version, digest or sha256(tarball), tarball.name, license_, where,
                _dist_info_name(name, version))


def of_closure(records: tuple[Record, ...], files_dir: Path) -> tuple[Item, ...]:
    """Every wheel of a closure, by name."""
    return tuple(wheel_item(r, files_dir / r.file) for r in sorted(records, key=lambda r: r.name))
