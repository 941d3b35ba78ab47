"""Static build requirements of sdists, read without running their code."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from venvdeb.core.config import Distribution, Release
from venvdeb.core.errors import SdistBuildFailed
from venvdeb.python.build_lock import (
    LEGACY,
    BuildSystem,
    exact_pins,
    group_dir,
    groups,
    parse_build_system,
    plan,
    read_build_system,
)
from venvdeb.python.lock import LockEntry
from venvdeb.python.sdist import unlocked


def _sdist(tmp_path: Path, files: dict[str, bytes], symlink: str | None = None) -> Path:
    path = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return path


def test_declared_requirements_and_backend(tmp_path: Path) -> None:
    sdist = _sdist(tmp_path, {"pkg-1.0/pyproject.toml": b'[build-system]\nrequires = ["Cython>=3", '
                              b'"setuptools"]\nbuild-backend = "setuptools.build_meta"\n',
                              "pkg-1.0/sub/pyproject.toml": b'[build-system]\nrequires = ["evil"]\n'})
    assert read_build_system(sdist, "pkg 1.0") == BuildSystem(("Cython>=3", "setuptools"),
                                                              "setuptools.build_meta")


def test_no_pyproject_or_no_build_system_is_setuptools_legacy(tmp_path: Path) -> None:
    assert read_build_system(_sdist(tmp_path, {"pkg-1.0/setup.py": b"boom()"}), "pkg") == LEGACY
    assert parse_build_system(b"[tool.black]\n", "x") == LEGACY
    # a link named pyproject.toml is not followed
    assert read_build_system(_sdist(tmp_path, {}, symlink="pkg-1.0/pyproject.toml"), "pkg") == LEGACY


@pytest.mark.parametrize("text", [b'[build-system]\nrequires = "setuptools"\n',
                                  b'[build-system]\nrequires = ["not a requirement!"]\n',
                                  b"[build-system\n"])
def test_malformed_build_system_names_the_file(text: bytes) -> None:
    with pytest.raises(SdistBuildFailed, match="pkg-1.0.tar.gz/pyproject.toml"):
        parse_build_system(text, "pkg-1.0.tar.gz/pyproject.toml")


def test_unlocked_dynamic_requirements() -> None:
    lock = (LockEntry(canonicalize_name("setuptools"), "setuptools", "80.9.0", frozenset({"a"})),
            LockEntry(canonicalize_name("wheel"), "wheel", "0.45.1", frozenset({"b"})))
    assert unlocked(["wheel", "Setuptools>=64", "cython; python_version < '3'"], lock, "3.11") == ()
    assert unlocked(["wheel<0.40", "pbr>=2"], lock, "3.11") == ("wheel<0.40", "pbr>=2")


def test_plan_unites_static_discovered_and_setuptools_wheel() -> None:
    release = Release("2099.1", "fixture", Path("r"), "projects", ("bookworm",),
                      ("setuptools==66.1.1",), "file:///index")
    distribution = Distribution("bookworm", Path("/usr/bin/python3"), "3.11", "amd64", (2, 36), "m")
    the_plan = plan(release, distribution,
                    {"a-1.tar.gz": BuildSystem(("setuptools>=61",), "setuptools.build_meta"),
                     "b-1.tar.gz": BuildSystem(("flit_core",), "flit_core.buildapi")},
                    {"b-1.tar.gz": ("pbr>=1.3",)})
    lines = the_plan.requirements_in.splitlines()
    assert "-c constraints.txt" in lines
    assert "setuptools>=61  # a-1.tar.gz" in lines
    assert "wheel  # a-1.tar.gz (setuptools < 70.1 asks for it)" in lines
    assert "flit_core  # b-1.tar.gz" in lines
    assert "pbr>=1.3  # b-1.tar.gz (asked by its backend)" in lines
    assert the_plan.constraints == "setuptools==66.1.1\n"
    assert the_plan.only_binary and the_plan.scope == "build"
    assert "build lock" not in the_plan.requirements_in, "one lock says nothing of groups"


def test_sdists_whose_exact_pins_contradict_get_build_locks_of_their_own() -> None:
    """2026.1's krb5 0.9.0 builds with Cython==3.2.1 and gssapi 1.11.1 with
    Cython==3.2.4: one lock cannot hold both. Each sdist joins the first lock none of
    whose exact pins its own contradict (its backend's discovered ones too); ranges
    are left to pip-compile."""
    setuptools = BuildSystem(("setuptools>=40.8.0",), "setuptools.build_meta")
    systems = {
        "krb5-0.9.0.tar.gz": BuildSystem(("Cython == 3.2.1", "setuptools >= 42.0.0"),
                                         "setuptools.build_meta"),
        "gssapi-1.11.1.tar.gz": BuildSystem(("Cython == 3.2.4", "setuptools >= 40.6.0"),
                                            "setuptools.build_meta"),
        "psycopg2-2.9.11.tar.gz": setuptools,
        "other-1.tar.gz": BuildSystem(("cython==3.2.4.0",), "setuptools.build_meta"),
        "late-1.tar.gz": setuptools,
    }
    parts = groups(systems, {"late-1.tar.gz": ("Cython==3.2.1 ; python_version > '3'",)})
    assert [sorted(p) for p in parts] == [
        ["gssapi-1.11.1.tar.gz", "other-1.tar.gz", "psycopg2-2.9.11.tar.gz"],
        ["krb5-0.9.0.tar.gz", "late-1.tar.gz"]]
    assert groups({"a-1.tar.gz": setuptools, "b-1.tar.gz": setuptools}) == (
        {"a-1.tar.gz": setuptools, "b-1.tar.gz": setuptools},)
    assert groups({}) == ()
    assert exact_pins(["Cython == 3.2.1", "x>=1", "y==1.*", "Z===2", "bad req ==", "w==1.0"]) == {
        "cython": Version("3.2.1"), "w": Version("1.0")}
    assert group_dir(Path("/l/build-lock"), 0) == Path("/l/build-lock")
    assert group_dir(Path("/l/build-lock"), 1) == Path("/l/build-lock/group-2")
    release = Release("2099.1", "fixture", Path("r"), "projects", ("bookworm",), (), "file:///i")
    distribution = Distribution("bookworm", Path("/usr/bin/python3"), "3.11", "amd64", (2, 36), "m")
    second = plan(release, distribution, parts[1], group=1, of=2)
    assert "# build lock 2 of 2: sdists whose exact pins contradict another lock's" in \
        second.requirements_in.splitlines()
    assert "Cython == 3.2.1  # krb5-0.9.0.tar.gz" in second.requirements_in.splitlines()
    assert "Cython == 3.2.4" not in second.requirements_in


def test_building_an_sdist_unprivileged_is_one_line_saying_who_may(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from venvdeb.core.errors import HostError
    from venvdeb.python import sdist
    monkeypatch.setattr(sdist.os, "geteuid", lambda: 1000)
    with pytest.raises(HostError) as refused:
        sdist.build_wheel(name="libvirt-python", version="11.0.0", sdist=tmp_path / "x.tar.gz",
                          out_dir=tmp_path / "out", debian_build_deps=(),
                          build_system=LEGACY, build_lock=(), venv_archive=tmp_path / "venv.tar",
                          root=tmp_path, python="/usr/bin/python3", python_version="3.11",
                          log=tmp_path / "log", source_date_epoch=0)
    assert "the sdist of libvirt-python 11.0.0 enters a chroot" in str(refused.value)
    assert "worker running as its own user" in (refused.value.hint or "")
    assert not (tmp_path / "out").exists(), "refused before anything is made"


def test_declared_build_requirements_join_the_static_ones_once() -> None:
    from venvdeb.python.build_lock import with_declared
    system = BuildSystem(("setuptools>=40.8.0", "wheel"), "setuptools.build_meta")
    assert with_declared(system, ()) is system
    assert with_declared(system, ("wheel", "pbr>=1.3")).requires == (
        "setuptools>=40.8.0", "wheel", "pbr>=1.3")
    assert with_declared(system, ("pbr>=1.3",)).backend == "setuptools.build_meta"
