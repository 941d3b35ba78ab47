"""What the SBOM a venv package ships must agree with: the venv as built (its
.dist-info directories), the wheel files of the requirements package, the orig
tarball. Shared by the fixture's and keystone's tests."""
from __future__ import annotations

import hashlib
import json
import tarfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from debian.debfile import DebFile
from packageurl import PackageURL
from packaging.utils import canonicalize_name


def _members(deb: Path) -> tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]:
    tar = DebFile(str(deb)).data.tgz()
    return tar, {m.name.lstrip("."): m for m in tar.getmembers()}


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None, member.name
    return handle.read()


def check(venv_deb: Path, reqdeb_deb: Path, orig: Path, venv: str, release: str
          ) -> dict[str, Any]:
    """Assert everything the SBOM of ``venv_deb`` claims; return it (parsed)."""
    package = DebFile(str(venv_deb)).debcontrol()["Package"]
    tar, files = _members(venv_deb)
    where = f"/usr/share/doc/{package}/sbom.cdx.json"
    assert where in files, f"{package} ships no {where} (compressed: {where + '.gz' in files})"
    text = _read(tar, files[where]).decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc: dict[str, Any] = json.loads(text)
    assert doc["metadata"]["component"]["name"] == package
    assert doc["metadata"]["component"]["version"] == DebFile(str(venv_deb)).debcontrol()["Version"]
    # every distribution installed in the venv, by its own METADATA, and nothing more
    # (what importlib.metadata sees: the .dist-info directories of site-packages itself,
    # not those a distribution vendors inside its own tree, as setuptools/_vendor/)
    installed = {}
    for name, member in files.items():
        parts = name.removeprefix(f"{venv}/lib/").split("/")
        if name.startswith(f"{venv}/lib/") and len(parts) == 4 and \
                parts[1] == "site-packages" and name.endswith(".dist-info/METADATA"):
            meta = HeaderParser().parsestr(_read(tar, member).decode("utf-8", "replace"))
            installed[canonicalize_name(meta["Name"])] = meta["Version"]
    listed = {c["name"]: c["version"] for c in doc["components"]}
    assert listed == installed, (set(listed.items()) ^ set(installed.items()))
    # each wheel's hash against the file the requirements package installs
    wheels_tar, wheels = _members(reqdeb_deb)
    root = f"/usr/share/venvdeb/wheels/{release}/files/"
    for component in doc["components"]:
        props = {p["name"]: p["value"] for p in component["properties"]}
        [digest] = [h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"]
        if "venvdeb:debian-source" in props:
            assert digest == hashlib.sha256(orig.read_bytes()).hexdigest(), component["name"]
            continue
        member = wheels.get(root + props["venvdeb:file"])
        assert member is not None, f"{props['venvdeb:file']} is not in {reqdeb_deb.name}"
        assert digest == hashlib.sha256(_read(wheels_tar, member)).hexdigest(), component["name"]
        came_from = PackageURL.from_string(props["venvdeb:requirements-package"])
        control = DebFile(str(reqdeb_deb)).debcontrol()
        assert (came_from.type, came_from.name, came_from.version) == \
            ("deb", control["Package"], control["Version"]), came_from
        for ref in component.get("externalReferences", ()):
            if ref["type"] == "bom":  # PEP 770: an SBOM the wheel carries, in the venv
                assert ref["url"].removeprefix("file://") in files, ref["url"]
    return doc
