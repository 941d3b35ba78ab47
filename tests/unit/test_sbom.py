"""The SBOM of a venv package: what each wheel declares (venvdeb.python.inventory) and
the CycloneDX document the source package carries (venvdeb.debian.sbom)."""
from __future__ import annotations

import datetime
import hashlib
import json
from email.message import Message
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.conftest import ROOT
from tests.fixtures.make_index import Dist, service_sdist, wheel_bytes
from venvdeb.core import config, versions
from venvdeb.core.errors import ConfigError
from venvdeb.debian import sbom, source_package
from venvdeb.python import inventory
from venvdeb.python.upstream import Source
from venvdeb.python.wheelhouse import Record


def _meta(**fields: str | list[str]) -> Message:
    meta = Message()
    for key, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            meta[key.replace("_", "-")] = one
    return meta


APACHE = "License :: OSI Approved :: Apache Software License"


@pytest.mark.parametrize(("meta", "expected"), [
    (_meta(License_Expression="MIT OR Apache-2.0", License="BSD", Classifier=[APACHE]),
     ("MIT OR Apache-2.0", "expression")),
    (_meta(License="BSD-3-Clause", Classifier=[APACHE]), ("BSD-3-Clause", "license")),
    # a license's whole text in the field, or UNKNOWN: the classifiers say it
    (_meta(License="Copyright (c) 2010\n\nPermission is hereby granted...",
           Classifier=[APACHE, "Programming Language :: Python"]),
     ("Apache Software License", "classifier")),
    (_meta(License="UNKNOWN", Classifier=[APACHE, "License :: OSI Approved :: MIT License"]),
     ("Apache Software License OR MIT License", "classifier")),
    (_meta(Name="x"), ("", "")),
])
def test_the_declared_license_pep_639_first(meta: Message, expected: tuple[str, str]) -> None:
    assert inventory.declared_license(meta) == expected


def _wheel(tmp_path: Path, dist: Dist) -> Record:
    name, data = wheel_bytes(dist)
    (tmp_path / name).write_bytes(data)
    return Record(dist.name, dist.version, name, hashlib.sha256(data).hexdigest(), "fetched")


def test_a_wheel_says_its_license_and_the_sboms_it_carries(tmp_path: Path) -> None:
    with_sbom = _wheel(tmp_path, Dist("fixture-lib", "1.0.0", sbom=True))
    plain = _wheel(tmp_path, Dist("fixture-app", "1.0.0"))
    items = inventory.of_closure((with_sbom, plain), tmp_path)
    assert [i.name for i in items] == ["fixture-app", "fixture-lib"]
    lib = items[1]
    assert (lib.license, lib.license_source) == ("Apache-2.0", "license")
    assert lib.sboms == ("sboms/fixture_lib.cdx.json",)
    assert lib.dist_info == "fixture_lib-1.0.0.dist-info"
    assert lib.sha256 == with_sbom.sha256 and items[0].sboms == ()


def test_a_damaged_wheel_is_named(tmp_path: Path) -> None:
    (tmp_path / "x-1-py3-none-any.whl").write_bytes(b"not a zip")
    record = Record("x", "1", "x-1-py3-none-any.whl", "00" * 32, "fetched")
    with pytest.raises(ConfigError, match=r"x-1-py3-none-any.whl: not a readable wheel"):
        inventory.of_closure((record,), tmp_path)


def test_the_project_is_its_orig_tarball(tmp_path: Path) -> None:
    name, data = service_sdist()
    tarball = tmp_path / name
    tarball.write_bytes(data)
    item = inventory.sdist_item("Fixture_Service", "1.0.0", tarball)
    assert (item.name, item.version) == ("fixture-service", "1.0.0")
    assert item.sha256 == hashlib.sha256(data).hexdigest() and item.file == name


@pytest.fixture
def cfg() -> config.Config:
    return config.load(ROOT / "pipeline.toml")


def _plan(cfg: config.Config, tmp_path: Path, *, ledger: str = "versions.json",
          data: bytes = service_sdist()[1]) -> source_package.SourcePlan:
    name = service_sdist()[0]
    tarball = tmp_path / name
    tarball.write_bytes(data)
    wheels = (_wheel(tmp_path, Dist("fixture-lib", "1.0.0", sbom=True)),
              _wheel(tmp_path, Dist("six", "1.17.0")))
    items = (inventory.sdist_item("keystone", "29.0.2", tarball),
             *inventory.of_closure(wheels, tmp_path))
    requirements = "--require-hashes\n" + "".join(
        f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in wheels)
    draft = source_package.plan(
        cfg, cfg.projects["keystone"], cfg.release("2026.1"), cfg.distribution("bookworm"),
        upstream=Source(tarball, "29.0.2", "29.0.2", "test"), requirements=requirements,
        reqdeb_package="openstack-wheels-2026.1", reqdeb_version="2026.1.3+68f42221",
        items=items)
    assigned = versions.assign(tmp_path / ledger, draft.ledger_key, "2026.1", draft.digest,
                               tag="deb12")
    return source_package.versioned(draft, assigned)


def test_the_source_package_carries_a_valid_reproducible_sbom(cfg: config.Config,
                                                              tmp_path: Path) -> None:
    the_plan = _plan(cfg, tmp_path)
    files = dict(the_plan.files)
    text = files[f"debian/{sbom.SOURCE_FILE}"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert _plan(cfg, tmp_path).files == the_plan.files, \
        "the same inputs (the ledger gives the same version and date): the same bytes"
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6"
    root = doc["metadata"]["component"]
    assert root["purl"] == ("pkg:deb/venvdeb/venv-keystone-2026.1@90:29.0.2-0%2Bdeb12u1"
                            "?arch=amd64&distro=debian-12")
    stamp = datetime.datetime.fromtimestamp(the_plan.epoch, datetime.UTC)
    assert doc["metadata"]["timestamp"] == stamp.isoformat(), "SOURCE_DATE_EPOCH"
    by_name = {c["name"]: c for c in doc["components"]}
    assert set(by_name) == {"keystone", "fixture-lib", "six"}
    lib = by_name["fixture-lib"]
    assert lib["purl"] == "pkg:pypi/fixture-lib@1.0.0"
    props = {p["name"]: p["value"] for p in lib["properties"]}
    assert props["venvdeb:requirements-package"] == (
        "pkg:deb/venvdeb/openstack-wheels-2026.1@2026.1.3%2B68f42221?arch=all&distro=debian-12")
    assert lib["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    refs = {r["type"]: r["url"] for r in lib["externalReferences"]}
    assert refs["bom"] == ("file:///opt/venvs/keystone-2026.1/lib/python3.11/site-packages/"
                           "fixture_lib-1.0.0.dist-info/sboms/fixture_lib.cdx.json")
    assert refs["distribution"] == ("file:///usr/share/venvdeb/wheels/2026.1/files/"
                                    "fixture_lib-1.0.0-py3-none-any.whl")
    own = by_name["keystone"]
    own_props = {p["name"]: p["value"] for p in own["properties"]}
    assert own_props["venvdeb:debian-source"].startswith("pkg:deb/venvdeb/keystone@90:29.0.2-")
    orig = tmp_path / service_sdist()[0]
    assert own["hashes"][0]["content"] == hashlib.sha256(orig.read_bytes()).hexdigest()
    assert {d["ref"] for d in doc["dependencies"]} >= {root["bom-ref"]}
    rules = files["debian/rules"]
    assert ("install -D -m 0644 debian/venvdeb/sbom.cdx.json "
            "debian/venv-keystone-2026.1/usr/share/doc/venv-keystone-2026.1/sbom.cdx.json") in rules
    assert "dh_compress -X.cdx.json" in rules


def test_serial_and_timestamp_follow_the_inputs(cfg: config.Config, tmp_path: Path) -> None:
    first = json.loads(dict(_plan(cfg, tmp_path).files)[f"debian/{sbom.SOURCE_FILE}"])
    # another orig tarball (its PKG-INFO read as none): another digest, another serial
    other = _plan(cfg, tmp_path, ledger="other.json", data=service_sdist("1.0.1")[1])
    second = json.loads(dict(other.files)[f"debian/{sbom.SOURCE_FILE}"])
    assert first["serialNumber"] != second["serialNumber"]
    assert first["serialNumber"].startswith("urn:uuid:")
    digests = [{p["name"]: p["value"] for p in d["metadata"]["properties"]}
               ["venvdeb:inputs-digest"] for d in (first, second)]
    assert digests[0] != digests[1]
