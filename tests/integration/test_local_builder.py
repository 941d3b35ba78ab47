"""The local builder and the install-test chroot, tried as hostile code would.

A tiny native source package (a few seconds with debhelper) whose rules
record who they run as, what they see of the requirements package, and what
happens when they write to /root, to the wheels or open a socket; and a
chroot command doing what a hostile maintainer script would try.
"""
from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest
from debian.debfile import DebFile

from tests.conftest import require_tools
from venvdeb.core import images, sandbox
from venvdeb.core.workdir import shared_cache
from venvdeb.debian import builders
from venvdeb.debian.requirements_package import INSTALL_ROOT
from venvdeb.qa import chroot

pytestmark = pytest.mark.integration

DEP = "venvdeb-test-build-dependency"
PROBE = "/usr/share/venvdeb-probe"
RULES = f"""#!/usr/bin/make -f
%:
\tdh $@

override_dh_auto_install:
\tmkdir -p debian/probe{PROBE}
\tid -u > debian/probe{PROBE}/uid
\tcat {INSTALL_ROOT}/probe/marker > debian/probe{PROBE}/marker
\tls {INSTALL_ROOT} > debian/probe{PROBE}/wheels
\tdpkg-query -W -f '$${{Version}}' {DEP} > debian/probe{PROBE}/status
\t(touch {INSTALL_ROOT}/probe/x 2>&1 || true) > debian/probe{PROBE}/write-wheels
\t(touch /root/venvdeb-probe 2>&1 || true) > debian/probe{PROBE}/write-root
\t(python3 -c 'import socket; socket.create_connection(("192.0.2.1", 80), 3)' 2>&1 \\
\t\t|| true) > debian/probe{PROBE}/network
"""
CONTROL = f"""Source: probe
Section: misc
Priority: optional
Maintainer: venvdeb tests <tests@example.org>
Build-Depends: debhelper-compat (= 13), {DEP}
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: probe
Architecture: all
Depends: ${{misc:Depends}}
Description: what a local build saw
 Written by debian/rules.
"""
CHANGELOG = """probe (1.0) unstable; urgency=medium

  * Probe.

 -- venvdeb tests <tests@example.org>  Mon, 30 Nov 2026 10:00:00 +0000
"""


def _dependency(tmp: Path) -> Path:
    """A stand-in requirements package: one marker under the wheels' root."""
    tree = tmp / "dep"
    (tree / INSTALL_ROOT.lstrip("/") / "probe").mkdir(parents=True)
    (tree / INSTALL_ROOT.lstrip("/") / "probe" / "marker").write_text("wheels of this build\n")
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {DEP}\nVersion: 7.0\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: stand-in requirements package\n")
    deb = tmp / f"{DEP}_7.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True,
                   capture_output=True)
    return deb


def _source(tmp: Path) -> Path:
    src = tmp / "probe-1.0"
    (src / "debian" / "source").mkdir(parents=True)
    for name, text in (("control", CONTROL), ("changelog", CHANGELOG), ("rules", RULES),
                       ("source/format", "3.0 (native)\n")):
        (src / "debian" / name).write_text(text)
    (src / "debian" / "rules").chmod(0o755)
    subprocess.run(["dpkg-source", "-b", src.name], cwd=tmp, check=True, capture_output=True)
    return tmp / "probe_1.0.dsc"


def _host_status(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}", package],
                          capture_output=True, text=True).stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the local builder's view needs root")
def test_a_local_build_runs_as_the_sandbox_user_and_installs_nothing(tmp_path: Path) -> None:
    require_tools("dpkg-buildpackage", "dh", "unshare", "setpriv")
    host_before = _host_status(DEP)
    out = tmp_path / "out"
    out.mkdir()
    result = builders.build_local(_source(tmp_path), out, tmp_path / "build.log",
                                  source_date_epoch=1_700_000_000,
                                  depends=(builders.BuildDependency(_dependency(tmp_path),
                                                                    INSTALL_ROOT),))
    [deb] = result.debs
    seen = {m.name.split("/")[-1]: m for m in DebFile(str(deb)).data.tgz().getmembers()
            if m.name.startswith(f".{PROBE}/") and m.isfile()}
    data = DebFile(str(deb)).data

    def read(name: str) -> str:
        return data.get_content(f"{PROBE}/{name}".lstrip("/")).decode().strip()

    assert set(seen) >= {"uid", "marker", "wheels", "status", "write-wheels", "write-root"}
    assert read("uid") == str(pwd.getpwnam(sandbox.USER).pw_uid), "ran as the sandbox user"
    assert read("marker") == "wheels of this build"
    assert read("wheels") == "probe", "only this build's wheels, none of the host's"
    assert read("status") == "7.0", "dpkg's private status lists the build dependency"
    assert "Read-only file system" in read("write-wheels")
    assert "Permission denied" in read("write-root")
    assert "Network is unreachable" in read("network")
    assert not Path("/root/venvdeb-probe").exists()
    assert _host_status(DEP) == host_before, "nothing was installed on the host"
    assert not Path(INSTALL_ROOT, "probe").exists(), "nothing of it stays on the host"
    assert "dpkg -i" not in (tmp_path / "build.log").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="install-test chroots need root")
def test_the_install_test_chroot_has_no_network_disks_or_mounts(tmp_path: Path) -> None:
    """What a maintainer script could try, as root in the install-test chroot."""
    require_tools("mmdebstrap", "unshare")
    log = tmp_path / "chroot.log"
    image = images.tarball("minbase", "bookworm", "amd64", "http://deb.debian.org/debian",
                           shared_cache() / "chroot", log)
    with chroot.session(image, log) as box:
        def sh(script: str, network: bool = False) -> str:
            return box.sh(script, what="hostile probe", network=network).output

        offline, online = sh("cat /proc/net/dev"), sh("cat /proc/net/dev", network=True)
        devices = sh("ls /dev").split()
        refused = sh("mount -t tmpfs t /mnt 2>&1 || true; "
                     "echo x 2>&1 > /proc/sys/kernel/core_pattern || true")
        bounding = sh("grep CapBnd /proc/self/status")
        processes = sh("ls /proc | grep '^[0-9]' | wc -l")
    assert _interfaces(offline) == ["lo"], offline
    assert len(_interfaces(online)) > 1, f"positive control: the host's interfaces\n{online}"
    assert not {"vda", "sda", "nvme0n1", "mem", "kmsg"} & set(devices), devices
    assert "permission denied" in refused, "mount is refused"
    assert "Read-only file system" in refused, "kernel knobs are read-only"
    assert bounding.split() == ["CapBnd:", f"{0xa00005fb:016x}"], bounding
    assert int(processes) < 5, "a PID namespace of its own"


def _interfaces(proc_net_dev: str) -> list[str]:
    return [line.split(":")[0].strip() for line in proc_net_dev.splitlines()
            if ":" in line and "|" not in line]
