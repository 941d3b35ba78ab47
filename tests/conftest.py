"""Shared fixtures: an offline fixture index and configs that point at it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.make_index import build_index

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
RELEASE = "2099.1"


#: The real-release module's pipeline (tens of minutes, mostly waiting on PyPI, apt,
#: mmdebstrap, sbuild and booted nodes) starts when collection ends and runs beside
#: the other tests; the tests that need it run last (``pytest_collection_modifyitems``)
#: and wait for it (its ``pipeline`` fixture).
REAL_RELEASE = "tests/integration/test_real_release.py::"
REAL_PIPELINE = pytest.StashKey[tuple[subprocess.Popen[bytes], Path]]()


def _needs_pipeline(item: pytest.Item) -> bool:
    return item.nodeid.startswith(REAL_RELEASE) and \
        "pipeline" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    late = [item for item in items if _needs_pipeline(item)]
    items[:] = [item for item in items if not _needs_pipeline(item)] + late


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not any(_needs_pipeline(i) for i in session.items):
        return
    from tests.integration.test_real_release import start_pipeline
    base = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    session.config.stash[REAL_PIPELINE] = start_pipeline(Path(base))


def pytest_sessionfinish(session: pytest.Session) -> None:
    started = session.config.stash.get(REAL_PIPELINE, None)
    if started is not None and started[0].poll() is None:  # the session ended first
        os.killpg(started[0].pid, signal.SIGTERM)
        started[0].wait()


def require_tools(*tools: str) -> None:
    """Skip when a tool is missing, except in CI, where that is a failure."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        message = f"missing tools: {', '.join(missing)} (run bin/setup)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    if "unshare" in tools and os.geteuid() != 0:
        pytest.skip("unshare -n needs root")


def readable_dir(prefix: str) -> Path:
    """A directory that the sandbox user (venvdeb.core.sandbox) can read, unlike
    pytest's temporary directories (0700 root): a file:// index it locks from."""
    path = Path(tempfile.mkdtemp(prefix=f"venvdeb-test-{prefix}-"))
    path.chmod(0o755)
    _readable_dirs.append(path)
    return path


_readable_dirs: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _remove_readable_dirs() -> Iterator[None]:
    yield
    for path in _readable_dirs:
        shutil.rmtree(path, ignore_errors=True)


def open_to_all(root: Path) -> Path:
    """Directories 0755 and files 0644 under ``root`` (made under any umask)."""
    for path in (root, *root.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="session")
def fixture_index() -> Path:
    return open_to_all(build_index(readable_dir("index")))


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Project:
    """A fixture checkout: a pipeline.toml and requirement files in ``root``."""

    root: Path
    index: Path
    workdir: Path

    @property
    def config(self) -> Path:
        return self.root / "pipeline.toml"

    @property
    def requirements(self) -> Path:
        return self.root / "requirements" / RELEASE

    def write(self, *, upper_constraints: str | None = None, denylist: str | None = None,
              extra_pins: str = "[]", projects: str | None = None, scope: str = '"projects"',
              sdist_deps: str = "", release_extra: str = "") -> None:
        self.requirements.mkdir(parents=True, exist_ok=True)
        (self.requirements / "upper-constraints.txt").write_text(
            upper_constraints if upper_constraints is not None else
            "# fixture constraints\n"
            "fixture-lib===1.0.0\n"
            "fixture-native===0.1.0\n"
            "fixture-lint===1.0.0\n"
            "fixture-lib===0.9.0;python_version=='3.9'\n")
        (self.requirements / "denylist.txt").write_text(
            denylist if denylist is not None else "# linters\nfixture-lint\n")
        (self.requirements / "global-requirements.txt").write_text("fixture-lib>=1.0\n")
        default_projects = f'[projects.fixture-app]\nversions = {{ "{RELEASE}" = "1.0.0" }}'
        self.config.write_text(f"""
[repository]
origin = "venvdeb-tests"
label = "venvdeb tests"
maintainer = "venvdeb tests <tests@venvdeb.invalid>"
index_url = "file://{self.index}"

[distributions.bookworm]
python = "/usr/bin/python3"
python_version = "3.11"
architecture = "amd64"
glibc = "2.36"

[distributions.trixie]
python = "/usr/bin/python3"
python_version = "3.13"
architecture = "amd64"
glibc = "2.41"

[releases."{RELEASE}"]
series = "fixture"
requirements_dir = "requirements/{RELEASE}"
scope = {scope}
distributions = ["bookworm"]
extra_pins = {extra_pins}
{release_extra}

[sdist_build_dependencies]
{sdist_deps}

{projects if projects is not None else default_projects}
""")

    def venvdeb(self, *args: str, capsys: pytest.CaptureFixture[str]) -> Run:
        from venvdeb.cli import main
        capsys.readouterr()
        code = main(["--config", str(self.config), "--workdir", str(self.workdir), *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def debs(self) -> list[Path]:
        return sorted(self.workdir.glob("releases/*/*/reqdeb/*.deb"))


@pytest.fixture
def project(tmp_path: Path, fixture_index: Path) -> Project:
    p = Project(tmp_path / "checkout", fixture_index, tmp_path / "work")
    p.root.mkdir()
    p.write()
    return p


@pytest.fixture
def make_project(tmp_path: Path, fixture_index: Path) -> Callable[[str], Project]:
    def make(name: str) -> Project:
        p = Project(tmp_path / name / "checkout", fixture_index, tmp_path / name / "work")
        p.root.mkdir(parents=True)
        p.write()
        return p
    return make


@pytest.fixture(scope="session")
def python3() -> str:
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
