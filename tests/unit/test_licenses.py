"""``venvdeb licenses`` and the license gate of ``venvdeb promote``, through
``cli.main``, on a workdir whose wheels declare their licenses in each way core
metadata allows."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.unit.conftest import RELEASE
from tests.unit.test_audit import TARGET, _workdir
from tests.unit.test_cli import _main
from venvdeb.core import config
from venvdeb.core.errors import ConfigError
from venvdeb.python import wheelhouse
from venvdeb.python.wheelhouse import Record
from venvdeb.qa.licenses import blocks


@pytest.mark.parametrize(("declared", "blocked", "expected"), [
    ("GPL-3.0-only", ["gpl-3.0-only"], True),          # case is ignored
    ("LGPL-3.0-only", ["GPL-3.0-only"], False),        # a symbol, not a substring
    ("MIT OR GPL-3.0-only", ["GPL-3.0-only"], False),  # MIT may be chosen
    ("MIT AND GPL-3.0-only", ["GPL-3.0-only"], True),  # both apply
    ("(AGPL-3.0-only OR GPL-3.0-only) AND MIT", ["AGPL-3.0-only", "GPL-3.0-only"], True),
    ("GPL-2.0-or-later WITH Classpath-exception-2.0", ["GPL-2.0-or-later"], True),
    ("GNU Affero General Public License v3", ["GNU Affero General Public License v3"], True),
    ("Mozilla Public License 2.0 (MPL 2.0)", ["MPL-2.0"], False),  # a name: exact match only
    ("", ["GPL-3.0-only"], False),                     # undeclared: reported, not blocked
    ("GPL-3.0-only", [], False),
])
def test_what_a_blocked_license_blocks(declared: str, blocked: list[str], expected: bool) -> None:
    assert blocks(declared, blocked) is expected


def _wheel(name: str, version: str, headers: str) -> tuple[str, bytes]:
    module = name.replace("-", "_")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{module}-{version}.dist-info/METADATA",
                    f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n{headers}")
    return f"{module}-{version}-py3-none-any.whl", buf.getvalue()


WHEELS = {
    "copyleft": ("1.0", "License-Expression: MIT AND GPL-3.0-only\n"),
    "dual": ("2.0", "License-Expression: MIT OR GPL-3.0-only\n"),
    "classic": ("3.0", "License: BSD\nClassifier: License :: OSI Approved :: BSD License\n"),
    "silent": ("4.0", ""),
}


def _wheelhouse(checkout: Path) -> None:
    """The lock (no advisory applies) and the wheels of WHEELS; fixture-app's closure
    holds copyleft."""
    _workdir(checkout, {n: v for n, (v, _) in WHEELS.items()}, ("copyleft==1.0",))
    house = checkout / TARGET / "wheelhouse"
    (house / "files").mkdir(parents=True)
    records = []
    for name, (version, headers) in WHEELS.items():
        file, data = _wheel(name, version, headers)
        (house / "files" / file).write_bytes(data)
        records.append(Record(name, version, file, hashlib.sha256(data).hexdigest(), "fetched"))
    wheelhouse.write_records(house / wheelhouse.MANIFEST, tuple(records))


def _block(checkout: Path, *licenses: str) -> None:
    path = checkout / "pipeline.toml"
    listed = ", ".join(f'"{x}"' for x in licenses)
    path.write_text(path.read_text().split("\n[audit]\n")[0] +
                    f"\n[audit]\nblocked_licenses = [{listed}]\n")


def test_each_pin_with_its_license_and_the_blocked_ones_exit_3(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _wheelhouse(checkout)
    assert _main(checkout, "licenses", "--release", RELEASE) == 0, "nothing blocked yet"
    out = capsys.readouterr().out
    assert "license" in out.splitlines()[0] and "MIT AND GPL-3.0-only" in out
    assert f"licenses: {RELEASE}/bookworm: 4 pins, 4 distinct licenses, 1 undeclared, " \
           f"0 blocked (none blocked ([audit] blocked_licenses))" in out
    _block(checkout, "GPL-3.0-only")
    assert _main(checkout, "licenses", "--release", RELEASE) == 3
    captured = capsys.readouterr()
    blocked = [line for line in captured.out.splitlines() if "BLOCKED" in line]
    assert len(blocked) == 1 and blocked[0].split()[0] == "copyleft", captured.out
    assert f"venv-fixture-app-{RELEASE}" in blocked[0], "who carries it"
    assert (f"licenses: 1 pin of {RELEASE}/bookworm declare a blocked license: copyleft 1.0 "
            f"(MIT AND GPL-3.0-only) (carried by openstack-wheels-{RELEASE} "
            f"venv-fixture-app-{RELEASE})") in captured.err
    assert _main(checkout, "licenses", "--release", RELEASE, "--json") == 3
    data = json.loads(capsys.readouterr().out)
    by_name = {p["package"]: p for p in data["pins"]}
    assert by_name["classic"]["declared_in"] == "license" and by_name["silent"]["license"] == ""
    assert [p["package"] for p in data["pins"] if p["blocked"]] == ["copyleft"]
    report = (checkout / TARGET / "audit" / "licenses.md").read_text()
    assert "| copyleft | 1.0 | MIT AND GPL-3.0-only | expression |" in report


def test_promote_is_refused_while_a_pin_declares_a_blocked_license(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _wheelhouse(checkout)
    _block(checkout, "GPL-3.0-only")
    assert _main(checkout, "promote", "--release", RELEASE) == 3
    err = capsys.readouterr().err
    assert "promote refused: 1 pin of" in err and "copyleft 1.0" in err, err
    # the dual-licensed pin alone does not stop it: the empty staging does
    _block(checkout, "BSD")
    assert _main(checkout, "promote", "--release", RELEASE) == 3, "classic declares BSD"
    _block(checkout, "Apache-2.0")
    assert _main(checkout, "promote", "--release", RELEASE) == 1
    err = capsys.readouterr().err
    assert f"bookworm-{RELEASE}-staging is empty: nothing to promote" in err, err


def test_a_pin_without_its_wheel_here_stops_the_gate(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workdir(checkout, {"copyleft": "1.0"}, None)
    _block(checkout, "GPL-3.0-only")
    assert _main(checkout, "promote", "--release", RELEASE) == 1
    err = capsys.readouterr().err
    assert "1 pins of" in err and "cannot tell their licenses" in err, err


@pytest.mark.parametrize("value", ['"GPL;rm -rf /"', '"$(id)"', '""', "3"])
def test_a_bad_blocked_license_is_refused_at_load(checkout: Path, value: str) -> None:
    path = checkout / "pipeline.toml"
    path.write_text(path.read_text() + f"\n[audit]\nblocked_licenses = [{value}]\n")
    with pytest.raises(ConfigError, match=r"audit.*blocked_licenses"):
        config.load(path)


def test_online_and_an_export_at_once_are_refused_online_alone_gates(checkout: Path) -> None:
    path = checkout / "pipeline.toml"
    base = path.read_text()
    path.write_text(base + '\n[audit]\nadvisories = "osv"\nonline = true\n')
    with pytest.raises(ConfigError, match=r"audit\.online: an OSV export .* both configured"):
        config.load(path)
    path.write_text(base + "\n[audit]\nonline = true\n")
    assert config.load(path).audit.gated
    path.write_text(base + '\n[audit]\nonline = "yes"\n')
    with pytest.raises(ConfigError, match=r"audit\.online: expected true or false"):
        config.load(path)
