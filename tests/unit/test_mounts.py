"""The private views commands run in: what ``mounts.View.wrap`` asks of unshare,
and what real root may write into a test chroot."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from venvdeb.core import mounts, runner
from venvdeb.core.errors import InstallTestFailed
from venvdeb.qa import chroot, node


def _specs(argv: tuple[str, ...]) -> list[dict[str, object]]:
    return [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "venvdeb.core.mounts"]


def test_a_userns_chroot_binds_as_root_then_maps_its_root() -> None:
    view = mounts.View((mounts.Bind(Path("/srv/repo"), "/srv/candidates"),), Path("/tmp/tree"),
                       userns=True)
    argv = view.wrap(["apt-get", "install", "x"])
    first, second = _specs(argv)
    # the binds, as real root, in a mount namespace of its own...
    assert argv[:3] == ("unshare", "--mount", "--")
    assert first == {"root": "/tmp/tree", "binds": [["/srv/repo", "/srv/candidates", False]],
                     "read_only": False, "cgroups": [], "only_binds": True}
    # ...then a user namespace whose root is a subordinate id, with the rest of the view
    inner = argv[argv.index("--", 3) + 1:]
    assert inner[:9] == ("unshare", "--user", "--map-users=auto", "--map-groups=auto",
                         "--setuid", "0", "--setgid", "0", "--mount")
    assert "--net" in inner and "--pid" in inner
    assert second["binds"] == [] and second["root"] == ".", "entered from stage 1's cwd"
    assert argv[-3:] == ("apt-get", "install", "x")


def test_a_booted_node_joins_its_cgroups_before_its_cgroup_namespace() -> None:
    view = mounts.View(root=Path("/tmp/node"), bounded=False, userns=True,
                       cgroups=(Path("/sys/fs/cgroup/unified/venvdeb-node-1"),))
    argv = view.wrap(["/lib/systemd/systemd", "--system"])
    first, second = _specs(argv)
    assert first["cgroups"] == ["/sys/fs/cgroup/unified/venvdeb-node-1"]
    inner = argv[argv.index("--", 3) + 1:]
    assert "--cgroup" in inner[:inner.index("--")] and "--net" in inner[:inner.index("--")]
    assert "cgroups" not in second and second["bounded"] is False


def test_the_network_is_cut_unless_asked_for() -> None:
    view = mounts.View(root=Path("/tmp/tree"), userns=True)
    assert "--net" in view.wrap(["true"])
    assert "--net" not in view.wrap(["true"], network=True)


def test_a_shared_read_only_tree_runs_its_command_as_a_user() -> None:
    view = mounts.View((mounts.Bind(Path("/tmp/scratch"), "/build", writable=True),),
                       Path("/cache/tree"), read_only=True, userns=True, user=(1000, 1000),
                       cwd="/build/src")
    first, second = _specs(view.wrap(["python3", "-m", "venv", "/build/venv"]))
    # real root makes the shared tree read-only and binds the scratch...
    assert first["read_only"] is True and first["binds"] == [["/tmp/scratch", "/build", True]]
    # ...the builder runs in the user namespace, as uid 1000 there
    assert second["read_only"] is False and second["user"] == [1000, 1000]
    assert second["cwd"] == "/build/src"


def test_dropping_to_root_is_refused() -> None:
    with pytest.raises(OSError, match="uid or gid 0"):
        mounts._drop_to(0, 106)


def test_subordinate_ids_are_read_from_etc_subuid(tmp_path: Path) -> None:
    uid, gid = mounts.subordinate()  # bin/setup gives root 100000:65536
    assert uid >= 65536 and gid >= 65536
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("builder:200000:65536\nroot:300000:65536\n")
    subgid.write_text("root:400000:100000\n")
    assert mounts.subordinate((str(subuid), str(subgid))) == (300000, 400000)
    subgid.write_text("root:400000:1000\n")  # too small to map a system
    with pytest.raises(mounts.SubordinateIdsMissing, match="gives root no range") as caught:
        mounts.subordinate((str(subuid), str(subgid)))
    assert caught.value.hint is not None and "root:100000:65536" in caught.value.hint


def test_root_writes_into_a_test_chroot_never_through_a_link_out(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc" / "apt").symlink_to(outside)  # left by something that ran in the chroot
    box = chroot.Chroot(root, (), tmp_path / "log")
    with pytest.raises(InstallTestFailed, match="leads out of it"):
        box.put("/etc/apt/sources.list", "deb file:/x ./\n")
    assert not (outside / "sources.list").exists()
    # a link as the file itself is replaced, not written through
    target = tmp_path / "victim"
    target.write_text("mine\n")
    (root / "etc" / "motd").symlink_to(target)
    written = box.put("/etc/motd", "hello\n", 0o600)
    assert target.read_text() == "mine\n"
    assert not written.is_symlink() and written.read_text() == "hello\n"
    st = written.stat()
    assert (st.st_uid, st.st_gid) == mounts.subordinate()
    assert oct(st.st_mode & 0o777) == "0o600"
    assert box.uid(st.st_uid) == 0 and box.gid(st.st_gid) == 0


def test_an_unprivileged_caller_binds_in_a_user_namespace_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not root (an unprivileged worker): the local builder's binds are made as root of a
    user namespace that maps the caller alone; as root, no user namespace."""
    view = mounts.View((mounts.Bind(Path("/w/depends/wheels"), "/usr/share/venvdeb/wheels"),))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    argv = view.wrap(["dpkg-buildpackage"])
    assert argv[:6] == ("unshare", "--user", "--map-root-user", "--mount", "--net", "--fork")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert view.wrap(["dpkg-buildpackage"])[:3] == ("unshare", "--mount", "--net")


def test_an_unprivileged_caller_is_told_to_have_root_make_a_missing_mount_point(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from venvdeb.debian import builders
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(builders.BuildFailed, match="only root may make it") as caught:
        builders._mountpoint(tmp_path / "usr" / "share" / "venvdeb" / "wheels")
    assert caught.value.hint.startswith(f"as root, once: install -d -m 755 {tmp_path}/usr")
    assert not (tmp_path / "usr").exists()


def test_a_command_in_a_test_chroot_or_on_a_node_never_gets_the_hosts_tmpdir(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The host's TMPDIR (where venvdeb's own scratch goes) names a host directory: a
    maintainer script in the chroot (ca-certificates' mktemp) would fail on it."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "host-scratch"))
    seen: list[dict[str, str]] = []

    def record(argv: object, **kwargs: object) -> runner.Result:
        env = kwargs["env"]
        assert isinstance(env, dict)
        seen.append(env)
        return runner.Result(("true",), 0, "")

    monkeypatch.setattr(runner, "run", record)
    chroot.Chroot(tmp_path / "tree", (), tmp_path / "log").run(["true"])
    node.Node(chroot.Chroot(tmp_path / "tree", (), tmp_path / "log"), 1,
              tmp_path / "log").run(["true"])
    assert [e["TMPDIR"] for e in seen] == ["/tmp", "/tmp"]
    # what the caller asks for still wins
    chroot.Chroot(tmp_path / "tree", (), tmp_path / "log").run(
        ["true"], env={"TMPDIR": "/var/tmp"})
    assert seen[-1]["TMPDIR"] == "/var/tmp"
