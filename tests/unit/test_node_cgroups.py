"""The booted node's cgroups, read and removed while its systemd may still be making
and removing some: a cgroup that vanishes during the walk is no error (CI saw
FileNotFoundError from a walk, then EBUSY from the cleanup, on a loaded machine)."""
from __future__ import annotations

from pathlib import Path

from venvdeb.qa.node import _processes, _remove


def test_the_pids_of_every_cgroup_below_and_a_vanished_one_is_skipped(tmp_path: Path) -> None:
    node = tmp_path / "venvdeb-node-x"
    (node / "system.slice" / "dbus.service").mkdir(parents=True)
    (node / "cgroup.procs").write_text("10\n")
    (node / "system.slice" / "dbus.service" / "cgroup.procs").write_text("11\n12\n")
    gone = node / "system.slice" / "gone.service"
    gone.mkdir()
    (gone / "cgroup.procs").symlink_to(tmp_path / "nowhere")  # unreadable as if removed
    assert sorted(_processes((node,))) == ["10", "11", "12"]


def test_removal_is_deepest_first_and_ignores_what_is_gone(tmp_path: Path) -> None:
    node = tmp_path / "venvdeb-node-y"
    (node / "system.slice" / "a.service").mkdir(parents=True)
    (node / "init.scope").mkdir()
    _remove((node,))
    assert not node.exists()
    _remove((tmp_path / "venvdeb-node-never",))  # nothing there: nothing to do
