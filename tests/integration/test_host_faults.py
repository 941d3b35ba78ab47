"""Faults of the host: a workdir that cannot be made, or fills up midway. Each is one
line naming the path, a non-zero exit and no traceback; what was there stays intact,
and the same command finishes the job once there is room."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RELEASE, Project, Run

pytestmark = pytest.mark.integration
#: lintian is the reqdeb tests' business: here it would only add 10 s
REQDEB = ("reqdeb", "--release", RELEASE, "--no-lintian")


def _error_line(run: Run) -> str:
    assert run.code != 0, run.out
    assert "Traceback" not in run.err, run.err
    lines = [line for line in run.err.splitlines() if line.startswith("venvdeb: error: ")]
    assert len(lines) == 1, run.err
    return lines[0]


def test_a_workdir_under_proc_is_one_line(project: Project,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from venvdeb.cli import main
    capsys.readouterr()
    code = main(["--config", str(project.config), "--workdir", "/proc/x",
                 "lock", "--release", RELEASE])
    line = _error_line(Run(code, *capsys.readouterr()))
    assert "/proc/x" in line and "--workdir" in line


@pytest.fixture
def small_workdir(project: Project) -> Iterator[Path]:
    """The project's workdir on its own 1 MiB tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    project.workdir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "venvdeb-test",
                    str(project.workdir)], check=True)
    try:
        yield project.workdir
    finally:
        subprocess.run(["umount", str(project.workdir)], check=True)


def _fill(directory: Path, leave: int = 0) -> None:
    """Take every free block of the filesystem under ``directory`` but ``leave`` bytes."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == 28, exc
        os.ftruncate(fd, os.fstat(fd).st_size - leave)
    finally:
        os.close(fd)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the workdir but logs and the (empty) lock files beside ledgers."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "filler" and "logs" not in p.parts
            and not p.name.endswith(".json.lock")}


def test_a_full_or_read_only_workdir_is_one_line_and_the_rerun_finishes(
        project: Project, small_workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for stage in ("lock", "wheels"):
        assert project.venvdeb(stage, "--release", RELEASE, capsys=capsys).code == 0
    wheelhouse = small_workdir / "releases" / RELEASE / "bookworm" / "wheelhouse"
    lost = wheelhouse / "files" / "fixture_lib-1.0.0-py3-none-any.whl"
    wheel = lost.read_bytes()
    lost.unlink()  # the next run downloads it again, into a full filesystem
    before = _snapshot(small_workdir)
    _fill(small_workdir)

    line = _error_line(project.venvdeb("wheels", "--release", RELEASE, capsys=capsys))
    assert f"No space left on device: {lost}" in line and "rerun the same command" in line
    assert _snapshot(small_workdir) == before, "a failed run changes nothing it had"
    assert not list(small_workdir.rglob("*.tmp")), "and leaves no temporary file"

    subprocess.run(["mount", "-o", "remount,size=2m", str(small_workdir)], check=True)
    run = project.venvdeb("wheels", "--release", RELEASE, capsys=capsys)
    assert run.code == 0, run.err
    assert lost.read_bytes() == wheel

    # The requirements package finds room for its first files only: nothing it had is
    # changed, no package is left, and once there is room the same command builds it.
    before = _snapshot(small_workdir)
    _fill(small_workdir, leave=16 * 1024)
    line = _error_line(project.venvdeb(*REQDEB, capsys=capsys))
    assert f"No space left on device: {small_workdir}" in line
    after = _snapshot(small_workdir)
    assert {name: after.get(name) for name in before} == before and not project.debs()
    assert not list(small_workdir.rglob("*.tmp"))

    subprocess.run(["mount", "-o", "remount,ro", str(small_workdir)], check=True)
    line = _error_line(project.venvdeb(*REQDEB, capsys=capsys))
    assert f"Read-only file system: {small_workdir}/" in line and "writable --workdir" in line

    subprocess.run(["mount", "-o", "remount,rw,size=3m", str(small_workdir)], check=True)
    run = project.venvdeb(*REQDEB, capsys=capsys)
    assert run.code == 0, run.err
    assert len(project.debs()) == 1
