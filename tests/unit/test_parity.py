"""Parity with Debian: the comparison, the documented differences, and the facts
read from a node's tree (a small fake tree), all without a node."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from venvdeb import cli
from venvdeb.core import config as config_mod
from venvdeb.qa import parity, parity_files, parity_node
from venvdeb.qa.parity import ABSENT, NODE, Documented, Fact, Row, Scope

ROOT = Path(__file__).resolve().parents[2]

DEBIAN = [
    Fact("keystone", "package", "keystone", "installed"),
    Fact("keystone", "package", "python3-keystone", "installed"),
    Fact("keystone", "etc", "/etc/keystone", "dir keystone:keystone 0750"),
    Fact("keystone", "port", "tcp/5000", "keystone.service"),
    Fact("keystone", "unit", "keystone.service", "enabled, active"),
]
OURS = [
    Fact("keystone", "unit", "keystone.service", "enabled, active"),
    Fact("keystone", "package", "venv-keystone-2026.1", "installed"),
    Fact("keystone", "package", "keystone", "installed"),
    Fact("keystone", "etc", "/etc/keystone", "dir root:keystone 0750"),
    Fact("keystone", "port", "tcp/5000", "keystone.service"),
    Fact(NODE, "port", "tcp/22", "process sshd"),
]


def test_compare_lines_up_both_nodes_in_a_stable_order() -> None:
    rows = parity.compare(DEBIAN, OURS)
    assert [(r.aspect, r.item) for r in rows] == [
        ("package", "keystone"), ("package", "python3-keystone"),
        ("package", "venv-keystone-2026.1"), ("etc", "/etc/keystone"),
        ("unit", "keystone.service"), ("port", "tcp/5000"), ("port", "tcp/22")]
    assert rows[1] == Row("keystone", "package", "python3-keystone", "installed", ABSENT)
    assert rows[2].debian == ABSENT and rows[2].ours == "installed"
    assert rows[-1].project == NODE, "facts of nobody's project come last"
    assert [r.same for r in rows] == [True, False, False, False, True, True, False]


def test_ports_sort_by_number_and_projects_come_as_asked() -> None:
    facts = [Fact("p", "port", f"tcp/{n}", "u") for n in (8889, 5000, 80)]
    assert [r.item for r in parity.compare(facts, facts)] == ["tcp/80", "tcp/5000", "tcp/8889"]
    two = [Fact("a", "unit", "a.service", "x"), Fact("k", "unit", "k.service", "x")]
    assert [r.project for r in parity.compare(two, two, ["k", "a"])] == ["k", "a"]


DOC = """\
# Parity

| project | aspect | item | Debian | ours | reason |
|---|---|---|---|---|---|
| keystone | package | `python3-keystone` | `installed` | - | the library is in the venv |
| keystone | package | `venv-keystone-2026.1` | - | `installed` | the venv's package |
| keystone | etc | `/etc/keystone` | `dir keystone:keystone 0750` | `dir root:keystone 0750` | root's |
| keystone | etc | `/etc/keystone/gone` | `file` | - | closed since |
| nova | etc | `/etc/nova` | `x` | `y` | another project |
| a | b | c | d | e | f |
"""


def test_documented_differences_are_read_from_the_markdown_table() -> None:
    documented = parity.read_documented(DOC)
    assert len(documented) == 5, "the header and rows whose aspect is unknown are not rows"
    assert documented[0] == Documented("keystone", "package", "python3-keystone", "installed",
                                       ABSENT, "the library is in the venv")
    assert parity.read_documented("| p | etc | `/x` | `a \\| b` | - | r |")[0].debian == "a | b"


def test_each_difference_is_documented_or_named_and_stale_entries_found() -> None:
    documented = parity.read_documented(DOC)
    judged = parity.judge(parity.compare(DEBIAN, OURS), documented)
    assert [j.status for j in judged] == ["same", "documented", "documented", "documented",
                                          "same", "same", "NOT DOCUMENTED"]
    assert judged[1].reason == "the library is in the venv"
    assert parity.undocumented(judged) == (Row(NODE, "port", "tcp/22", ABSENT, "process sshd"),)
    assert [d.item for d in parity.stale(judged, documented, ["keystone"])] == \
        ["/etc/keystone/gone"], "nova was not compared: its entries are not stale"
    # a value that changed is a new difference, not the documented one
    changed = [Fact("keystone", "etc", "/etc/keystone", "dir keystone:keystone 0700")]
    assert parity.undocumented(parity.judge(parity.compare(changed, OURS[3:4]), documented))


def test_the_table_and_the_rows_to_document_round_trip() -> None:
    judged = parity.judge(parity.compare(DEBIAN, OURS), ())
    lines = parity.table(judged)
    assert lines[0].split() == ["project", "aspect", "item", "Debian", "ours"]
    assert lines[3].split() == ["keystone", "package", "python3-keystone", "installed", ABSENT,
                               "NOT", "DOCUMENTED"]
    rows = parity.markdown(parity.undocumented(judged))
    back = parity.read_documented("\n".join(rows))
    assert [(d.item, d.debian, d.ours) for d in back] == \
        [(r.item, r.debian, r.ours) for r in parity.undocumented(judged)]
    assert parity.summary(judged, "docs/parity.md") == \
        "parity: 7 facts, 3 the same, 4 differ, 4 of them not documented in docs/parity.md"


def test_scopes_install_the_names_debian_uses() -> None:
    cfg = config_mod.load(ROOT / "pipeline.toml")
    scopes = parity.scopes([cfg.projects["keystone"], cfg.projects["cloudkitty"]])
    assert scopes[0] == Scope("keystone", "keystone", ("keystone",), "keystone")
    assert scopes[1].install == ("python3-cloudkitty", "cloudkitty-common", "cloudkitty-api",
                                 "cloudkitty-processor")


SS = """\
LISTEN 0 100 0.0.0.0:5000 0.0.0.0:* users:(("uwsgi_python311",pid=212,fd=3),("uwsgi_python311",pid=201,fd=3))
LISTEN 0      4096            [::]:8889         [::]:*    users:(("uwsgi",pid=300,fd=4))
LISTEN 0      4096         0.0.0.0:8889      0.0.0.0:*    users:(("uwsgi",pid=300,fd=5))
garbage
"""


def test_listeners_and_their_units() -> None:
    assert parity_node.listeners(SS) == {5000: ("uwsgi_python311", (201, 212)),
                                         8889: ("uwsgi", (300,))}
    assert parity_node.cgroup_unit("0::/system.slice/keystone.service\n") == "keystone.service"
    assert parity_node.cgroup_unit("0::/init.scope") == "init.scope"
    assert parity_node.cgroup_unit("0::/") is None


def _tree(root: Path) -> None:
    (root / "etc/keystone").mkdir(parents=True)
    (root / "etc/keystone/keystone.conf").write_text("[DEFAULT]\n")
    (root / "etc/logrotate.d").mkdir()
    (root / "etc/logrotate.d/keystone").write_text("")
    (root / "etc/logrotate.d/apt").write_text("")
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (root / "etc/systemd/system/multi-user.target.wants/keystone.service").symlink_to(
        "/lib/systemd/system/keystone.service")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                     f"keystone:x:{os.getuid() + 1}:100:,,,:/var/lib/keystone:"
                                     "/usr/sbin/nologin\n")
    (root / "etc/group").write_text(f"root:x:0:\nkeystone:x:{os.getgid() + 1}:\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/keystone-manage").symlink_to("/opt/venvs/keystone-2026.1/bin/x")
    (root / "usr/bin/uwsgi").write_text("")
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: keystone\nStatus: install ok installed\nVersion: 90:29.0.2-1\n\n"
        "Package: venv-keystone-2026.1\nStatus: install ok installed\nSource: keystone "
        "(29.0.2-1)\n\nPackage: uwsgi\nStatus: install ok installed\n\n"
        "Package: keystone-doc\nStatus: deinstall ok config-files\n")
    (info / "keystone.list").write_text("/.\n/etc\n/etc/logrotate.d\n/etc/logrotate.d/keystone\n"
                                        "/usr/bin/keystone-manage\n"
                                        "/lib/systemd/system/keystone.service\n"
                                        "/etc/init.d/keystone\n")
    (info / "venv-keystone-2026.1:amd64.list").write_text("/opt/venvs/keystone-2026.1\n")
    (info / "uwsgi.list").write_text("/usr/bin/uwsgi\n/lib/systemd/system/uwsgi.service\n")


def test_facts_read_from_a_tree(tmp_path: Path) -> None:
    _tree(tmp_path)
    scopes = (Scope("keystone", "keystone", ("keystone",), "keystone"),)
    assert parity_node.installed(tmp_path)["venv-keystone-2026.1"] == "keystone"
    assert parity_node.unit_owners(tmp_path, scopes) == {"keystone.service": "keystone"}
    facts = {(f.aspect, f.item): f.value for f in parity_node.tree_facts(tmp_path, scopes)}
    me = os.stat(tmp_path)
    mode = oct(os.stat(tmp_path / "etc/keystone").st_mode & 0o7777)[2:].zfill(4)
    assert facts == {
        ("package", "keystone"): "installed",
        ("package", "venv-keystone-2026.1"): "installed",
        ("user", "keystone"): "home /var/lib/keystone, shell /usr/sbin/nologin",
        ("group", "keystone"): "members (none)",
        ("command", "keystone-manage"): "yes",
        ("etc", "/etc/keystone"): f"dir root:root {mode}" if me.st_uid == 0 else
        facts[("etc", "/etc/keystone")],
        ("etc", "/etc/keystone/keystone.conf"): facts[("etc", "/etc/keystone/keystone.conf")],
        ("etc", "/etc/logrotate.d/keystone"): facts[("etc", "/etc/logrotate.d/keystone")],
    }, "no uwsgi, no /etc/logrotate.d itself, no unit enablement links"
    assert facts[("etc", "/etc/keystone/keystone.conf")].startswith("file ")


def test_parity_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["parity", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "booted node" in out and "docs/parity.md" in out and "--release" in out
    assert "NOT DOCUMENTED" in out


def _deb(tmp_path: Path, package: str, files: dict[str, int]) -> Path:
    root = tmp_path / package
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(f"Package: {package}\nVersion: 1\nArchitecture: all\n"
                                         "Maintainer: t <t@example.org>\nDescription: t\n")
    for path, mode in files.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text("")
        (root / path.lstrip("/")).chmod(mode)
    deb = tmp_path / f"{package}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def test_file_level_facts_from_debs(tmp_path: Path) -> None:
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb is missing")
    scope = Scope("nova", "nova", ("nova-common", "nova-api"), "nova")
    debs = [_deb(tmp_path, "nova-common", {"/etc/nova/rootwrap.conf": 0o644,
                                           "/etc/sudoers.d/nova-common": 0o440,
                                           "/etc/logrotate.d/other": 0o644,
                                           "/usr/bin/nova-manage": 0o755}),
            _deb(tmp_path, "nova-api", {"/etc/init.d/nova-api": 0o755,
                                        "/lib/systemd/system/nova-api.service": 0o644}),
            _deb(tmp_path, "libvirt0", {"/usr/bin/virsh": 0o755})]
    facts = {(f.aspect, f.item): f.value for f in parity_files.facts([scope], debs)}
    assert facts == {
        ("package", "nova-common"): "shipped", ("package", "nova-api"): "shipped",
        ("etc", "/etc/nova"): "dir 0755", ("etc", "/etc/nova/rootwrap.conf"): "file 0644",
        ("etc", "/etc/sudoers.d/nova-common"): "file 0440",
        ("etc", "/etc/logrotate.d/other"): "file 0644",
        ("etc", "/etc/init.d/nova-api"): "file 0755",
        ("command", "nova-manage"): "yes", ("unit", "nova-api.service"): "shipped",
    }, "a file of the package counts even if not named after the project; libvirt0 is not nova's"


SIMULATED = """\
NOTE: This is only a simulation!
Inst python3-six (1.16.0-4 Debian:12.12/oldstable [all])
Inst keystone (2:22.0.2-0+deb12u3 Debian:12.12/oldstable [all])
Conf python3-six (1.16.0-4 Debian:12.12/oldstable [all])
"""


def test_debian_side_is_kept_per_package_closure(tmp_path: Path) -> None:
    scopes = (Scope("keystone", "keystone", ("keystone",), "keystone"),)
    key = parity_node.closure_key(SIMULATED, scopes, [5000])
    assert key == parity_node.closure_key("\n".join(reversed(SIMULATED.splitlines())),
                                          scopes, [5000]), "apt's order does not matter"
    assert key != parity_node.closure_key(SIMULATED.replace("u3", "u6"), scopes, [5000])
    assert key != parity_node.closure_key(SIMULATED, scopes, [5001])
    measured = parity_node.Measured((Fact("keystone", "unit", "keystone.service", "enabled, "
                                          "active"),), (("install", 220.0),), "running")
    parity_node._store(tmp_path / f"{key}.json", measured)
    back = parity_node._load(tmp_path / f"{key}.json", [("prepare", 30.0)])
    assert back.facts == measured.facts
    assert back.timings == (("prepare", 30.0), ("install (then)", 220.0))
    assert back.state.startswith("running when measured")
