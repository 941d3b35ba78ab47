"""A booted node: systemd as PID 1 of a chroot in a user namespace, units start,
only a loopback, powered off at the end."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_tools
from venvdeb.core import images, mounts
from venvdeb.core.workdir import shared_cache
from venvdeb.qa import chroot, node

pytestmark = pytest.mark.integration

MIRROR = "http://deb.debian.org/debian"


def test_a_node_boots_runs_a_unit_as_its_user_and_powers_off(tmp_path: Path) -> None:
    require_tools("unshare", "nsenter", "mmdebstrap")
    log = tmp_path / "node.log"
    image = images.tarball("minbase", "bookworm", "amd64", MIRROR, shared_cache() / "chroot",
                           log, packages=node.NODE_PACKAGES, what="mmdebstrap (node)")
    sub_uid, _ = mounts.subordinate()
    with chroot.session(image, log) as box:
        with node.booted(box, log) as booted:
            assert booted.state() == "running", log.read_text()[-3000:]
            # systemd is PID 1 there, and here it is not root but root's first subordinate id
            assert Path(f"/proc/{booted.pid}/comm").read_text().strip() == "systemd"
            assert Path(f"/proc/{booted.pid}").stat().st_uid == sub_uid
            booted.run(["systemd-run", "--unit=venvdeb-probe", "-p", "User=nobody",
                        "/bin/sleep", "300"])
            assert booted.run(["systemctl", "is-active", "venvdeb-probe"]).output.strip() == \
                "active"
            main = booted.run(["systemctl", "show", "-P", "MainPID", "venvdeb-probe"]
                              ).output.strip()
            assert booted.run(["stat", "-c", "%U", f"/proc/{main}"]).output.strip() == "nobody"
            # units with mount namespaces of their own start too (mariadb.service has
            # ProtectSystem=, ProtectHome=...): the node's root is a mount point
            sandboxed = booted.run(["systemd-run", "--wait", "-q", "-p", "PrivateTmp=yes", "-p",
                                    "ProtectSystem=full", "-p", "ProtectHome=yes", "/bin/true"],
                                   check=False)
            assert sandboxed.returncode == 0, sandboxed.output
            # a loopback of its own, up, and nothing else
            links = booted.run(["ip", "-o", "link"]).output.splitlines()
            assert [line.split(":")[1].strip() for line in links] == ["lo"]
            assert "UP" in links[0]
            pid, cgroups = booted.pid, booted.cgroups
            assert cgroups and all(c.is_dir() for c in cgroups)
        assert not Path(f"/proc/{pid}").exists(), "powered off"
        # its own: another node (a pipeline's install test) may be up meanwhile
        assert not any(c.exists() for c in cgroups), "its cgroups are removed"
