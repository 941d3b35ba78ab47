from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from venvdeb.core import config
from venvdeb.core.errors import ConfigError
from venvdeb.python import constraints, lock
from venvdeb.python.index import IndexFile

LOCK = """\
# venvdeb-lock-1 abc
# venvdeb: release 2026.1
alembic==1.18.4 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via
    #   -c constraints.txt
    #   oslo-db
oslo-i18n===6.6.0 \\
    --hash=sha256:cccc
    # via keystone

# The following packages are considered to be unsafe in a requirements file:
setuptools==80.9.0 \\
    --hash=sha256:dddd
"""


def test_parse_lock_reads_entries_and_hashes() -> None:
    entries = lock.parse_lock_text(LOCK, "lock.txt")
    assert [(e.name, e.version) for e in entries] == [
        ("alembic", "1.18.4"), ("oslo-i18n", "6.6.0"), ("setuptools", "80.9.0")]
    assert entries[0].hashes == frozenset({"aaaa", "bbbb"})
    assert entries[1].requirement == "oslo-i18n==6.6.0"


@pytest.mark.parametrize(("text", "message"), [
    ("six==1.16.0\n", "lock.txt:1: lock entry 'six==1.16.0' has no sha256 hash"),
    ("six>=1.16.0 --hash=sha256:aa\n", "is not pinned"),
    ("six=!1 --hash=sha256:aa\n", "unreadable lock entry"),
])
def test_parse_lock_refuses_bad_entries(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        lock.parse_lock_text(text, "lock.txt")


def _plan(scope: config.Scope) -> lock.LockPlan:
    cfg = config.load(ROOT / "pipeline.toml")
    rel, dist = cfg.release("2026.1"), cfg.distribution("bookworm")
    return lock.plan(cfg, rel, dist, constraints.load_pins(rel, dist, cfg.path), scope)


def test_projects_scope_locks_projects_bounded_by_constraints() -> None:
    plan = _plan("projects")
    lines = plan.requirements_in.splitlines()
    assert lines[1] == "-c constraints.txt"
    assert "keystone[ldap]==29.0.2" in lines and "cloudkitty==24.0.0" in lines
    assert {"setuptools==80.10.2", "pip==25.3", "wheel==0.45.1", "certifi==2026.10.18"} <= set(lines)
    assert "oslo.config==10.2.0" not in lines
    assert len(plan.constraints.splitlines()) == 558  # uv joined the extra pins: 557 -> 558
    assert "backports.strenum" not in plan.constraints, "marker for 3.10 only"


def test_all_scope_requires_every_pin() -> None:
    plan = _plan("all")
    assert plan.constraints == ""
    assert len([line for line in plan.requirements_in.splitlines() if not line.startswith("#")]) == 558
    assert plan.digest != _plan("projects").digest
    assert plan.digest == _plan("all").digest


def test_argv_uses_pip_tools_with_hashes() -> None:
    argv = lock.argv(_plan("projects"), Path("/c"))
    assert argv[1:3] == ["-m", "venvdeb.python.piptools_compile"]
    assert {"--generate-hashes", "--allow-unsafe", "--strip-extras"} <= set(argv)
    assert argv[argv.index("--index-url") + 1] == "https://pypi.org/simple"


def test_metadata_builds_are_held_to_the_releases_extra_pins() -> None:
    """setuptools 81 has no pkg_resources, which old setup.py files import while pip
    prepares their metadata (xstatic packages in 2025.1's scope all): the lock's build
    environments get the release's setuptools, as its venvs do."""
    plan = _plan("all")
    assert "setuptools==80.10.2\n" in plan.build_constraints
    assert "wheel==0.45.1\n" in plan.build_constraints
    argv = lock.argv(plan, Path("/c"))
    assert "--pip-args=--build-constraint build-constraints.txt" in argv
    assert argv[-1] == "requirements.in"
    bare = lock.LockPlan(plan.release, plan.distribution, plan.scope, plan.requirements_in,
                         plan.constraints, plan.index_url)
    assert bare.digest != plan.digest, "the build constraints are inputs of the lock"
    assert not any(a.startswith("--pip-args") for a in lock.argv(bare, Path("/c")))
    only = lock.LockPlan("r", "d", "build", "x\n", "", "i", only_binary=True,
                         build_constraints="setuptools==80.10.2\n")
    assert "--pip-args=--only-binary=:all: --build-constraint build-constraints.txt" in \
        lock.argv(only, Path("/c"))


def _pinset() -> constraints.PinSet:
    return constraints.PinSet((constraints.Pin("fixture-lib", "fixture-lib==9.9.9", "9.9.9", "uc.txt:4"),),
                              0, ())


def _lister(url: str, name: str) -> list[IndexFile]:
    versions = ("1.0.0", "1.1.0")
    return [IndexFile(f"fixture_lib-{v}-py3-none-any.whl", "u", None, None, False) for v in versions]


def test_failure_names_the_pin_the_index_lacks() -> None:
    output = ("ResolutionImpossible: [RequirementInformation(requirement=SpecifierRequirement("
              "'fixture-lib>=1.0'), parent=LinkCandidate('file:///i/files/fixture_app-1.0.0-py3-none-any.whl"
              "#sha256=00'))]")
    error = lock.explain_failure(output, _pinset(), Path("/l"), "file:///i", _lister)
    assert str(error) == ("the package index has no version 9.9.9 of fixture-lib "
                          "(pinned at uc.txt:4); it has 1.0.0, 1.1.0")


def test_failure_that_is_a_conflict() -> None:
    output = ("ResolutionImpossible: [RequirementInformation(requirement=SpecifierRequirement("
              "'fixture-lib>=2.0'), parent=LinkCandidate('file:///i/files/fixture_app-1.0.0-py3-none-any.whl"
              "#sha256=00'))]")
    pins = constraints.PinSet((constraints.Pin("fixture-lib", "fixture-lib==1.0.0", "1.0.0", "uc.txt:4"),),
                              0, ())
    error = lock.explain_failure(output, pins, Path("/l"), "file:///i", _lister)
    assert ("conflicting requirements: fixture-lib>=2.0 "
            "(needed by fixture_app-1.0.0-py3-none-any.whl)") in str(error)
    assert "fixture-lib pinned 1.0.0 at uc.txt:4" in str(error)


def test_an_unreachable_index_is_named_rather_than_called_a_conflict() -> None:
    output = ("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, "
              "status=None)) after connection broken by 'SSLError(SSLCertVerificationError(1, "
              "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
              "issuer certificate (_ssl.c:992)'))': /simple/cloudkitty/\n"
              "ResolutionImpossible: [RequirementInformation(requirement=SpecifierRequirement("
              "'cloudkitty==24.0.0'), parent=None)]")
    error = lock.explain_failure(output, _pinset(), Path("/l"), "https://pypi.org/simple",
                                 _lister)
    assert str(error).startswith("pip-compile could not reach the package index "
                                 "https://pypi.org/simple: WARNING: Retrying")
    assert "CERTIFICATE_VERIFY_FAILED" in str(error) and "CA certificates" in (error.hint or "")


def test_pinned_inputs_and_the_pins_a_new_plan_changes(tmp_path: Path) -> None:
    """The dry run's view of a constraint change: the lock's own inputs against the plan's."""
    from venvdeb.core.target import Target
    from venvdeb.core.workdir import Workdir
    from venvdeb.stages import lock as lock_stage

    cfg = config.load(ROOT / "pipeline.toml")
    t = Target(cfg.release("2026.1"), cfg.distribution("bookworm"))
    work = Workdir(tmp_path)
    lock_dir = work.lock_dir("2026.1", "bookworm")
    lock_dir.mkdir(parents=True)
    (lock_dir / "requirements.in").write_text(
        "# header\n-c constraints.txt\nkeystone[ldap]==29.0.2\nuv==0.13.9\n")
    (lock_dir / "constraints.txt").write_text("six==1.17.0\nPyYAML===6.0.3\nuv==0.13.9\n")
    (lock_dir / "lock.txt").write_text("".join(
        f"{n}=={v} \\\n    --hash=sha256:{'a' * 64}\n"
        for n, v in (("keystone", "29.0.2"), ("six", "1.17.0"), ("pyyaml", "6.0.3"),
                     ("pbr", "7.0.1"))))
    assert lock.pinned_inputs(lock_dir) == {"keystone": "29.0.2", "six": "1.17.0",
                                            "pyyaml": "6.0.3", "uv": "0.13.9"}
    plan = lock.LockPlan("2026.1", "bookworm", "projects",
                         "-c constraints.txt\nkeystone[ldap]==29.0.3\nuv==0.13.9\n",
                         "six==1.18.0\nuv==0.13.9\n", "https://pypi.org/simple")
    step = lock_stage.LockStep(plan, constraints.PinSet((), 0, ()), up_to_date=False)
    assert lock_stage.changed_pins(step, work, t) == {
        "keystone": "29.0.2 -> 29.0.3", "six": "1.17.0 -> 1.18.0",
        "pyyaml": "6.0.3 -> unpinned"}, "pbr was never pinned: not a change"


def test_a_project_for_another_python_names_the_distribution() -> None:
    """pip's words when every version's Requires-Python excludes the target interpreter."""
    output = ("ERROR: Ignored the following versions that require a different python version: "
              "29.0.2 Requires-Python >=3.10,<3.13\n"
              "ERROR: Could not find a version that satisfies the requirement keystone==29.0.2 "
              "(from versions: none)\n")
    error = lock.explain_failure(output, _pinset(), Path("/l"), "file:///i", _lister,
                                 target="trixie (Python 3.13)")
    assert str(error) == ("keystone==29.0.2 does not support the Python of trixie (Python "
                          "3.13): the index has it only for other Pythons (29.0.2 "
                          "Requires-Python >=3.10,<3.13)")
    assert "exclude_distributions" in (error.hint or "")


def test_pip_compile_prefetches_the_pinned_pages_and_metadata(tmp_path: Path) -> None:
    """venvdeb.python.piptools_compile takes --venvdeb-prefetch=N (never passed on to
    pip-compile) and fetches what the inputs pin: the exact pins of requirements.in and
    constraints.txt, names canonical, nothing that is a range or an option."""
    from venvdeb.python import piptools_compile
    argv = lock.argv(_plan("all"), Path("/c"))
    assert argv[3] == f"--venvdeb-prefetch={lock.PREFETCH}" and lock.PREFETCH > 1
    (tmp_path / "requirements.in").write_text(
        "# header\n-c constraints.txt\nkeystone[ldap]==29.0.2\noslo.config>=9\n"
        "pytz===2025.2 ; python_version >= '3.9'\nnot a requirement ==\n")
    (tmp_path / "constraints.txt").write_text("Oslo.Config==10.2.0  # pinned\n")
    assert piptools_compile.pinned([tmp_path / "requirements.in", tmp_path / "constraints.txt",
                                    tmp_path / "missing.txt"]) == {
        "keystone": "29.0.2", "pytz": "2025.2", "oslo-config": "10.2.0"}


def test_a_prefetch_that_fails_is_left_to_the_resolver() -> None:
    """What the prefetch cannot fetch is not an error there: the resolver asks again
    and reports it; what it can fetch reaches the session (the metadata's URL without
    the hash fragment) and the finder."""
    from venvdeb.python import piptools_compile

    class Link:
        url = "https://files.example/a-1.0-py3-none-any.whl.metadata#sha256=00"

    class Best:
        class link:  # noqa: N801
            is_wheel = True

            @staticmethod
            def metadata_link() -> object:
                return Link()

    class Sdist:
        class link:  # noqa: N801
            is_wheel = False

    asked: list[str] = []

    class Finder:
        def find_best_candidate(self, name: str, spec: object) -> object:
            asked.append(f"{name}{spec}")
            if name == "broken":
                raise OSError("unreachable")
            best = {"a": Best(), "sdist": Sdist()}.get(name)
            return type("R", (), {"best_candidate": best})()

    got: list[str] = []

    class Session:
        def get(self, url: str, headers: dict[str, str]) -> object:
            got.append(url)
            assert headers == {"Accept-Encoding": "identity"}
            return type("Response", (), {"content": b"Metadata-Version: 2.1\n",
                                         "status_code": 200})()

    piptools_compile.FETCHED.clear()
    sdists = piptools_compile.prefetch(Finder(), Session(),
                                       {"a": "1.0", "broken": "2", "sdist": "3", "none": "4"}, 4)
    assert sdists == [("sdist", "3", Sdist.link)], \
        "a pin whose best file is a sdist: its metadata is prepared next, while resolving"
    assert sorted(asked) == ["a==1.0", "broken==2", "none==4", "sdist==3"]
    assert got == ["https://files.example/a-1.0-py3-none-any.whl.metadata"]
    assert piptools_compile.FETCHED == {
        "https://files.example/a-1.0-py3-none-any.whl.metadata": b"Metadata-Version: 2.1\n"}
    piptools_compile.FETCHED.clear()


def test_hashing_reads_only_the_pinned_versions_links() -> None:
    """Before pip evaluates a page's links for the hashes, the links of other versions
    than the pinned one are left out, by file name (pip's own packaging); a name that
    does not parse, or a pin that is not exact, is left to pip."""
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.version import Version

    from venvdeb.python import piptools_compile

    assert piptools_compile._version_of("botocore-1.40.2-py3-none-any.whl") == Version("1.40.2")
    assert piptools_compile._version_of("python_ldap-3.4.5.tar.gz") == Version("3.4.5")
    assert piptools_compile._version_of("simplegeneric-0.8.1.zip") == Version("0.8.1")
    assert piptools_compile._version_of("infi.dtypes.iqn-0.4.0.tar.gz") == Version("0.4.0")
    assert piptools_compile._version_of("odd.exe") is None
    assert piptools_compile._version_of("not-a-version-x.y.tar.gz") is None

    def ireq(spec: str) -> object:
        return type("Ireq", (), {"specifier": SpecifierSet(spec)})()

    assert piptools_compile._pinned_version(ireq("==1.0")) == Version("1.0.0")
    assert piptools_compile._pinned_version(ireq(">=1.0")) is None
    assert piptools_compile._pinned_version(ireq("==1.*")) is None
    assert piptools_compile._pinned_version(ireq("==1.0,!=2")) is None
