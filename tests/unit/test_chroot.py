"""Where locks and closures run: the host for the host's distribution, else its tree
(commands recorded, not run)."""
from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT
from venvdeb.core import config, host, mounts, runner, sandbox
from venvdeb.core.errors import ConfigError, HostError
from venvdeb.python import chroot, closure, constraints, lock, locker
from venvdeb.python.wheelhouse import Record

HASH = "a" * 64
CFG = config.load(ROOT / "pipeline.toml")
BOOKWORM, TRIXIE = CFG.distribution("bookworm"), CFG.distribution("trixie")


class Recorder:
    """Records each command; pip-compile and pip (closure) leave their output in the
    scratch directory bound on /build, as they would."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], dict[str, str]]] = []

    def __call__(self, argv: tuple[str, ...], *, cwd: Path | None, env: Mapping[str, str],
                 stdin: Path | None, on_line: runner.LineCallback) -> int:
        self.calls.append((argv, dict(env)))
        outer, _, command = split(argv)
        box = Path(next(src for src, target, _ in outer["binds"] if target == "/build"))
        if "/build/piptools_compile.py" in command:
            (box / lock.NEW_LOCK).write_text(f"six==1.17.0 \\\n    --hash=sha256:{HASH}\n")
        if "--report" in command:
            (box / "report.json").write_text(json.dumps({"install": [
                {"metadata": {"name": "six", "version": "1.17.0"},
                 "download_info": {"url": "file:///build/files/six-1.17.0-py2.py3-none-any.whl"}},
                {"metadata": {"name": "fixture-app", "version": "1.0.0"},
                 "download_info": {"url": "file:///build/src", "dir_info": {}}}]}))
        return 0


def split(argv: tuple[str, ...]) -> tuple[dict[str, object], tuple[str, ...], tuple[str, ...]]:
    """A tree command's outer view (binds, made as root), the inner namespace's
    unshare options and the command itself."""
    views = [i for i, a in enumerate(argv) if a.startswith("{")]
    assert len(views) == 2, argv
    inner = argv[argv.index("unshare", 1):views[1]]
    return json.loads(argv[views[0]]), inner, argv[views[1] + 2:]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> chroot.Place:
    root = tmp_path / "trixie-tree"
    (root / chroot.PIP_RUNNER.parent.relative_to("/")).mkdir(parents=True)
    (root / chroot.PIP_RUNNER.relative_to("/")).write_text("")
    # the builder's uid is a subordinate one on a real host: here, ours (chown works unprivileged)
    monkeypatch.setattr(chroot, "builder", lambda: sandbox.Identity(os.getuid(), os.getgid()))
    return chroot.Place(root, str(TRIXIE.python))


def _lock_plan() -> lock.LockPlan:
    rel = CFG.release("2026.1")
    return lock.plan(CFG, rel, TRIXIE, constraints.load_pins(rel, TRIXIE, CFG.path))


def test_a_lock_for_another_distribution_makes_pip_tools_in_its_tree_then_compiles(
        tree: chroot.Place, tmp_path: Path) -> None:
    lock_dir = tmp_path / "lock"
    with runner.using(Recorder()) as rec:
        assert lock.compile_lock(_lock_plan(), lock_dir, tmp_path / "lock.log",
                                 constraints.PinSet((), 0, ()), where=tree)
    assert [e.requirement for e in lock.parse_lock(lock_dir / "lock.txt")] == ["six==1.17.0"]
    venv, install, compile_ = (split(argv) for argv, _ in rec.calls)
    for outer, inner, _ in (venv, install, compile_):
        assert outer["root"] == str(tree.root) and outer["read_only"] is True
        assert inner[:2] == ("unshare", "--user"), "a user namespace"
    # the network only to reach the index; then the host's resolver and CA certificates
    assert "--net" in venv[1] and "--net" not in install[1] and "--net" not in compile_[1]
    assert [b[1:] for b in venv[0]["binds"]] == [["/build", True]]  # type: ignore[attr-defined]
    assert [b[1:] for b in compile_[0]["binds"]] == [  # type: ignore[attr-defined]
        ["/build", True], ["/etc/resolv.conf", False],
        ["/etc/ssl/certs/ca-certificates.crt", False]]
    assert venv[2] == ("/usr/bin/python3", "-m", "venv", "--without-pip", "/build/locker")
    assert install[2] == ("/build/locker/bin/python", str(chroot.PIP_RUNNER), "install",
                          "--only-binary=:all:", "--index-url", "https://pypi.org/simple",
                          "--cache-dir", "/build/cache", "-r", "/build/locker.txt")
    assert compile_[2][:2] == ("/build/locker/bin/python", "/build/piptools_compile.py")
    assert list(compile_[2][2:]) == lock.options(_lock_plan(), Path("/build/cache"))
    env = rec.calls[2][1]
    assert env["PATH"] == "/usr/bin:/bin" and env["HOME"] == "/build/home"
    assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert env["PIP_CONFIG_FILE"] == "/dev/null"


def test_the_host_keeps_its_own_pip_compile() -> None:
    argv = lock.argv(_lock_plan(), Path("/c"))
    assert argv[:3] == [sys.executable, "-m", "venvdeb.python.piptools_compile"]
    assert argv[3:] == lock.options(_lock_plan(), Path("/c"))
    assert chroot.HOST.confine(Path("/c"), argv, network=True) == sandbox.confine(argv, network=True)
    assert chroot.HOST.environment(Path("/c"), {"PBR_VERSION": "1"}) == runner.clean_environment(
        {"HOME": "/c", "TMPDIR": "/c", "PBR_VERSION": "1"})


def test_the_locker_gets_the_host_venvs_pip_tools_and_its_dependencies() -> None:
    pins = locker.pins()
    assert f"pip-tools=={importlib.metadata.version('pip-tools')}" in pins
    assert f"pip=={importlib.metadata.version('pip')}" in pins
    assert f"click=={importlib.metadata.version('click')}" in pins


class _Dist:
    def __init__(self, name: str, version: str, requires: list[str]) -> None:
        self.metadata = {"Name": name}
        self.version = version
        self.requires = requires


def test_the_locker_pins_follow_markers_and_leave_what_is_not_here() -> None:
    dists = {"pip-tools": _Dist("pip-tools", "7.6.2", ["click>=8", 'tomli; python_version < "3.11"',
                                                       "pytest; extra == 'testing'", "absent"]),
             "click": _Dist("click", "8.5.1", []), "tomli": _Dist("tomli", "2.0", [])}

    def lookup(name: str) -> importlib.metadata.Distribution:
        if name not in dists:
            raise importlib.metadata.PackageNotFoundError(name)
        return dists[name]  # type: ignore[return-value]

    env = constraints.marker_environment(TRIXIE)
    assert locker.pins(env, lookup=lookup) == ("click==8.5.1", "pip-tools==7.6.2")


def test_a_closure_for_another_distribution_runs_offline_in_its_tree(
        tree: chroot.Place, tmp_path: Path) -> None:
    src = tmp_path / "fixture-app"
    src.mkdir()
    (src / "setup.py").write_text("")
    files = tmp_path / "files"
    files.mkdir()
    six = Record("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", HASH, "downloaded")
    (files / six.file).write_text("")
    with runner.using(Recorder()) as rec:
        found = closure.resolve(src, ("ldap",), "fixture-app", files, (six,),
                                tmp_path / "closure.log", "1.0.0", where=tree)
    assert found.records == (six,)
    [(argv, env)] = rec.calls
    outer, inner, command = split(argv)
    assert "--net" in inner and [b[1] for b in outer["binds"]] == ["/build"]  # type: ignore[attr-defined]
    assert command[:3] == ("/usr/bin/python3", str(chroot.PIP_RUNNER), "install")
    assert command[command.index("--report") + 1] == "/build/report.json"
    assert command[command.index("--find-links") + 1] == "/build/files"
    assert command[-1] == "/build/src[ldap]"
    assert env["PBR_VERSION"] == "1.0.0" and env["TMPDIR"] == "/build/tmp"


def test_a_closure_is_cached_per_interpreter() -> None:
    key = closure.cache_key("s" * 64, (), "keystone", "29.0.2", (), ())
    assert closure.cache_key("s" * 64, (), "keystone", "29.0.2", (), (), interpreter="3.13") != key


def test_a_tree_without_the_distributions_python_is_a_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chroot, "tree", lambda config, distribution, log: tmp_path)
    monkeypatch.setattr(host, "native", lambda distribution: False)
    monkeypatch.setattr(chroot.os, "geteuid", lambda: 0)
    with pytest.raises(ConfigError, match=r"distributions\.trixie\.python_version: its tree "
                                          r".* has no python3\.13"):
        chroot.place(CFG, TRIXIE, tmp_path / "log", "locking")



def test_no_pip_tools_beside_venvdeb_is_one_clear_error(
        tree: chroot.Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locker, "pins", lambda: ())
    with runner.using(Recorder()) as rec, pytest.raises(HostError, match="locking for trixie "
                                                         "installs into its tree the pip-tools"):
        locker.compile_in(tree, tmp_path, ["requirements.in"], "https://pypi.org/simple",
                          tmp_path / "log", "trixie")
    assert rec.calls == []


def test_a_local_index_is_bound_into_the_tree_and_pip_tools_comes_from_pypi(
        tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    in_tree = chroot.Place(tmp_path / "tree", "/usr/bin/python3")
    url, where = chroot.index_in(in_tree, box, f"file://{tmp_path}/simple")
    assert url == "file:///build/index/simple" and (box / "index").is_dir()
    assert where.binds == (mounts.Bind(tmp_path, "/build/index"),), "files/ beside simple/"
    argv = where.confine(box, ["pip-compile"])
    view = json.loads(argv[argv.index("venvdeb.core.mounts") + 1])
    assert [str(tmp_path), "/build/index", False] in view["binds"]
    assert chroot.index_in(in_tree, box, "https://pypi.org/simple") == \
        ("https://pypi.org/simple", in_tree)
    assert chroot.index_in(chroot.HOST, box, f"file://{tmp_path}/index")[1] is chroot.HOST
    assert locker.tool_index(f"file://{tmp_path}/index") == locker.TOOL_INDEX
    assert locker.tool_index("https://mirror.example/simple") == "https://mirror.example/simple"
