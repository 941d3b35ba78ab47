"""The requirements deb, really built from the offline fixture index.

Runs pip-compile, pip (sdist builds), dpkg-buildpackage inside unshare -n,
lintian, and installs from the unpacked package with the network cut.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from debian.debfile import DebFile

from tests.conftest import RELEASE, Project, require_tools
from venvdeb.python.lock import parse_lock

pytestmark = pytest.mark.integration
ROOT_IN_DEB = f"usr/share/venvdeb/wheels/{RELEASE}"


def _all_stages(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    for stage in ("lock", "wheels", "reqdeb"):
        run = project.venvdeb(stage, "--release", RELEASE, capsys=capsys)
        assert run.code == 0, run.err


@pytest.fixture
def built(project: Project, capsys: pytest.CaptureFixture[str]) -> Project:
    require_tools("dpkg-buildpackage", "lintian", "unshare")
    _all_stages(project, capsys)
    return project


def test_deb_holds_every_locked_wheel_with_its_hash(built: Project) -> None:
    [deb] = built.debs()
    lock = built.workdir / "releases" / RELEASE / "bookworm" / "lock" / "lock.txt"
    entries = {e.name: e for e in parse_lock(lock)}
    assert set(entries) == {"fixture-app", "fixture-lib", "fixture-native"}, \
        "deny-listed and marker-excluded pins must stay out of the lock"
    assert entries["fixture-lib"].version == "1.0.0", "upper-constraints bounds the lock"
    # the index pages and metadata were fetched ahead; fixture-native, a sdist only, had
    # its metadata prepared beside the resolver, which took it (piptools_compile)
    said = (built.workdir / "logs" / RELEASE / "bookworm" / "lock.log").read_text()
    assert "venvdeb: prefetched the index pages and metadata of 3 pins" in said, said
    assert "venvdeb: hashed the files of 3 pins (their pages 16 at once)" in said, said
    jobs = max(2, 2 * (os.cpu_count() or 1))
    assert (f"venvdeb: prepared the metadata of 1 of 1 sdist-only pins ahead ({jobs} at once) "
            f"while resolving, 1 taken by the resolver") in said, said

    data = DebFile(str(deb)).data.tgz()
    members = {m.name.lstrip("./"): m for m in data.getmembers()}
    manifest = json.load(data.extractfile(members[f"{ROOT_IN_DEB}/manifest.json"]))  # type: ignore[arg-type]
    assert {m["name"] for m in manifest} == set(entries)
    for record in manifest:
        member = members[f"{ROOT_IN_DEB}/files/{record['file']}"]
        digest = hashlib.sha256(data.extractfile(member).read()).hexdigest()  # type: ignore[union-attr]
        assert digest == record["sha256"], record["file"]
        if record["origin"] == "downloaded":
            assert digest in entries[record["name"]].hashes, record["file"]
        else:
            # a built wheel comes from the sdist the lock names
            assert record["source_sha256"] in entries[record["name"]].hashes
    origins = {m["name"]: m["origin"] for m in manifest}
    assert origins == {"fixture-app": "downloaded", "fixture-lib": "downloaded",
                       "fixture-native": "built"}
    for name in entries:
        assert f"{ROOT_IN_DEB}/simple/{name}/index.html" in members
    for extra in ("lock.txt", "install-lock.txt", "requirements/upper-constraints.txt"):
        assert f"{ROOT_IN_DEB}/{extra}" in members
    # built as the sandbox user from hard links into the wheelhouse: still root's
    files = built.workdir / "releases" / RELEASE / "bookworm" / "wheelhouse" / "files"
    assert sorted(w.stat().st_uid for w in files.glob("*.whl")) == [os.geteuid()] * 3


def test_control_fields_read_back(built: Project) -> None:
    [deb] = built.debs()
    control = DebFile(str(deb)).debcontrol()
    assert control["Package"] == f"openstack-wheels-{RELEASE}"
    assert control["Architecture"] == "all", "pure wheels only: an arch-all package"
    assert control["Version"].startswith(f"{RELEASE}+deb12u1."), control["Version"]


def test_pip_installs_from_unpacked_deb_with_network_cut(built: Project, tmp_path: Path,
                                                          python3: str) -> None:
    [deb] = built.debs()
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([python3, "-m", "venv", str(venv)], check=True)
    env = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)}
    # The simple index replaces PyPI: with the network cut it is the only source.
    # (pip's --no-index would ignore --index-url; --find-links files/ is the other way.)
    index = f"file://{root}/{ROOT_IN_DEB}/simple"
    install = subprocess.run(
        ["unshare", "-n", str(venv / "bin/pip"), "install", "--index-url", index,
         "fixture-app"], env=env, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    out = subprocess.run([str(venv / "bin/fixture-app")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "fixture-app 1.0.0 ok"
    flat = subprocess.run(
        ["unshare", "-n", str(venv / "bin/pip"), "install", "--no-index", "--find-links",
         f"{root}/{ROOT_IN_DEB}/files", "--target", str(tmp_path / "flat"), "fixture-app"],
        env=env, capture_output=True, text=True)
    assert flat.returncode == 0, flat.stdout + flat.stderr
    hashed = subprocess.run(
        ["unshare", "-n", str(venv / "bin/pip"), "install", "--no-index", "--require-hashes",
         "--find-links", f"{root}/{ROOT_IN_DEB}/files", "-r",
         f"{root}/{ROOT_IN_DEB}/install-lock.txt", "--target", str(tmp_path / "t")],
        env=env, capture_output=True, text=True)
    assert hashed.returncode == 0, hashed.stdout + hashed.stderr


def test_same_inputs_give_same_bytes_in_another_directory(
        built: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [deb] = built.debs()
    other = Project(built.root, built.index, tmp_path / "elsewhere" / "work")
    shutil.copytree(built.workdir, other.workdir, ignore=shutil.ignore_patterns("*.deb"))
    run = other.venvdeb("reqdeb", "--release", RELEASE, capsys=capsys)
    assert run.code == 0, run.err
    [again] = other.debs()
    assert again.name == deb.name
    assert again.read_bytes() == deb.read_bytes()


def test_rerun_does_nothing_and_changed_input_gives_higher_version(
        built: Project, capsys: pytest.CaptureFixture[str]) -> None:
    [deb] = built.debs()
    for stage, expected in (("lock", "up to date"), ("wheels", "0 new this run"),
                            ("reqdeb", "up to date")):
        run = built.venvdeb(stage, "--release", RELEASE, capsys=capsys)
        assert run.code == 0, run.err
        assert expected in run.out, (stage, run.out)
    assert "3 cached, 0 to download, 0 to build" in built.venvdeb(
        "wheels", "--release", RELEASE, capsys=capsys).err

    built.write(upper_constraints="fixture-lib===1.1.0\nfixture-native===0.1.0\n")
    _all_stages(built, capsys)
    debs = built.debs()
    assert len(debs) == 2
    versions = sorted(DebFile(str(d)).debcontrol()["Version"] for d in debs)
    newer = [d for d in debs if d != deb][0]
    result = subprocess.run(["dpkg", "--compare-versions",
                             DebFile(str(newer)).debcontrol()["Version"], "gt",
                             DebFile(str(deb)).debcontrol()["Version"]])
    assert result.returncode == 0, versions


def test_interrupted_wheels_run_keeps_what_it_fetched(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    require_tools("dpkg-buildpackage")
    for stage in ("lock", "wheels"):
        assert project.venvdeb(stage, "--release", RELEASE, capsys=capsys).code == 0
    wheelhouse = project.workdir / "releases" / RELEASE / "bookworm" / "wheelhouse"
    manifest = (wheelhouse / "manifest.json").read_text()
    # as if killed before the records were written: files on disk, no records
    (wheelhouse / "records.json").unlink()
    (wheelhouse / "manifest.json").unlink()
    (wheelhouse / "files" / "fixture_app-1.0.0-py3-none-any.whl.part").write_bytes(b"partial")
    run = project.venvdeb("wheels", "--release", RELEASE, capsys=capsys)
    assert run.code == 0, run.err
    assert "kept       fixture_app-1.0.0-py3-none-any.whl" in run.err
    assert "kept       fixture_lib-1.0.0-py3-none-any.whl" in run.err
    assert (wheelhouse / "manifest.json").read_text() == manifest
