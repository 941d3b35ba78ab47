"""Pure parts of publishing: codenames, reprepro's conf, the publish plan,
the install-test plan, leftovers, the summary table and config checks."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from debian.deb822 import Deb822

from tests.conftest import ROOT
from tests.unit.test_config import BASE, _write
from venvdeb import pipeline
from venvdeb.archive import repository
from venvdeb.core import config
from venvdeb.core.errors import ConfigError, PublishError
from venvdeb.qa import chroot, install_test


def test_codenames_and_conf_cover_every_release_and_stage() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    names = [s.codename for s in repository.suites(cfg)]
    assert names == ["bookworm-2025.1-staging", "bookworm-2025.1",
                     "bookworm-2026.1-staging", "bookworm-2026.1",
                     "trixie-2026.1-staging", "trixie-2026.1"]
    text = repository.distributions_conf(cfg, "AB" * 20)
    paragraphs = [Deb822(p) for p in text.split("\n\n") if "Codename" in p]
    assert [p["Codename"] for p in paragraphs] == names
    for p in paragraphs:
        assert p["SignWith"] == "AB" * 20 and p["Architectures"] == "amd64 source"
        assert p["Components"] == "main" and p["Origin"] == "venvdeb"


def _item(tmp_path: Path, version: str, content: bytes = b"a", kind: str = "deb") -> repository.Item:
    path = tmp_path / f"pkg_{version.replace(':', '%')}.{kind}"
    path.write_bytes(content)
    return repository.Item(kind, "pkg", version, path, repository.sha256(path))  # type: ignore[arg-type]


def _held(tmp_path: Path, version: str, content: bytes) -> dict[tuple[str, str], repository.Entry]:
    pool = tmp_path / "pool" / "p.deb"
    pool.parent.mkdir(exist_ok=True)
    pool.write_bytes(content)
    return {("pkg", "deb"): repository.Entry("pkg", version, "deb", "pool/p.deb")}


def test_plan_includes_new_and_newer_and_skips_identical(tmp_path: Path) -> None:
    new = _item(tmp_path, "90:1.0-2")
    [step] = repository.plan([new], {}, tmp_path, "c")
    assert step.action == "include" and step.replaces is None
    [step] = repository.plan([new], _held(tmp_path, "90:1.0-1", b"old"), tmp_path, "c")  # type: ignore[arg-type]
    assert step.action == "include" and step.replaces == "90:1.0-1"
    [step] = repository.plan([new], _held(tmp_path, "90:1.0-2", b"a"), tmp_path, "c")  # type: ignore[arg-type]
    assert step.action == "present"


def test_plan_refuses_same_version_other_content_and_going_back(tmp_path: Path) -> None:
    new = _item(tmp_path, "90:1.0-2")
    with pytest.raises(PublishError, match=r"pkg 90:1.0-2 is already in c with different"):
        repository.plan([new], _held(tmp_path, "90:1.0-2", b"other"), tmp_path, "c")  # type: ignore[arg-type]
    with pytest.raises(PublishError, match=r"pkg 90:1.0-2 is older than 90:1.0-10 already in c"):
        repository.plan([new], _held(tmp_path, "90:1.0-10", b"a"), tmp_path, "c")  # type: ignore[arg-type]


def test_a_damaged_file_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "x_1_all.deb"
    bad.write_bytes(b"!<arch>\ngarbage")
    with pytest.raises(PublishError, match=r"x_1_all.deb is not a valid deb"):
        repository.item(bad)


def _deb(tmp_path: Path, version: str) -> Path:
    tree = tmp_path / f"tree-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: pkg\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@x.invalid>\n"
        f"Description: test\n")
    deb = tmp_path / f"pkg_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True,
                   capture_output=True)
    return deb


def test_what_is_checked_is_a_private_copy_a_later_swap_cannot_reach(tmp_path: Path) -> None:
    """The file swapped after the check (the race of hashing, then reading by path)."""
    deb, other = _deb(tmp_path, "1.0"), _deb(tmp_path, "6.6")
    paths = repository.Paths(tmp_path / "repo")
    with repository.incoming(paths) as into:
        it = repository.stage(deb, into)
        checked = it.sha256
        assert it.path.parent == into and into.stat().st_mode & 0o777 == 0o700
        deb.write_bytes(other.read_bytes())  # the attacker's swap, in place, after the check
        assert repository.sha256(it.path) == checked != repository.sha256(deb)
        assert repository.item(it.path).version == "1.0"
    assert not into.exists()


def test_a_symlink_or_a_dsc_pointing_outside_is_refused(tmp_path: Path) -> None:
    paths = repository.Paths(tmp_path / "repo")
    link = tmp_path / "pkg_1.0_all.deb"
    (tmp_path / "elsewhere").mkdir()
    link.symlink_to(_deb(tmp_path / "elsewhere", "1.0"))
    dsc = tmp_path / "src_1.0.dsc"
    dsc.write_text("Format: 3.0 (native)\nSource: src\nVersion: 1.0\nFiles:\n"
                   " 0123456789abcdef0123456789abcdef 4 ../../etc/shadow\n")
    with repository.incoming(paths) as into:
        with pytest.raises(PublishError, match=rf"{link} cannot be read .*symbolic link"):
            repository.stage(link, into)
        with pytest.raises(PublishError, match=rf"{dsc} lists a file outside its directory"):
            repository.stage(dsc, into)


def test_sources_entry_is_deb822_with_signed_by() -> None:
    entry = Deb822(repository.sources_entry("file:///srv/repo", "bookworm-2026.1",
                                            "/etc/apt/keyrings/k.gpg"))
    assert dict(entry) == {"Types": "deb", "URIs": "file:///srv/repo",
                           "Suites": "bookworm-2026.1", "Components": "main",
                           "Signed-By": "/etc/apt/keyrings/k.gpg"}


def test_install_plan_from_the_config() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    the_plan = install_test.plan(cfg.projects["keystone"], "2026.1", "90:29.0.2-1",
                                 ("openstack-wheels-2026.1", "2026.1.1+x"))
    assert the_plan.install == ("keystone",)
    assert ("venv-keystone-2026.1", "90:29.0.2-1") in the_plan.versions
    assert the_plan.commands == (("keystone-manage", "--version"),)
    assert the_plan.links == ("/usr/bin/keystone-manage", "/usr/bin/keystone-status")
    assert the_plan.users == ("keystone",)
    assert "/var/log/keystone" in [d.path for d in the_plan.directories]
    ck = install_test.plan(cfg.projects["cloudkitty"], "2026.1", "v", ("r", "1"))
    assert ("cloudkitty-status", "--help") in ck.commands
    assert ck.units == ("cloudkitty-processor",)


def test_leftovers_ignore_expected_churn() -> None:
    before = frozenset({"etc/", "etc/passwd", "usr/"})
    after = before | {"etc/group-", "var/log/apt/history.log", "etc/keystone/",
                      "etc/keystone/keystone.conf", "var/lib/dpkg/status-old"}
    assert chroot.leftovers(before, after) == ("etc/keystone/", "etc/keystone/keystone.conf")


def test_snapshot_lists_files_and_dirs_but_pseudo_filesystems(tmp_path: Path) -> None:
    for rel in ("etc/a", "proc/1/stat", "srv/skip/x", "usr/bin/b"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    found = chroot.snapshot(tmp_path, skip=("/srv/skip",))
    assert found == {"etc/", "etc/a", "srv/", "usr/", "usr/bin/", "usr/bin/b"}


def test_summary_table_aligns_columns() -> None:
    rows = [pipeline.Row("keystone", "90:29.0.2-1", 12_000, "passed", "passed"),
            pipeline.Row("venv-keystone-2026.1", "90:29.0.2-1", 28_500_000, "passed", "not run",
                         "2")]
    lines = pipeline.table(rows)
    assert lines[0].split() == ["package", "version", "size", "advisories", "lintian", "install",
                                "test"]
    assert lines[2].split()[2:5] == ["12", "kB", "-"]
    assert lines[3].split() == ["venv-keystone-2026.1", "90:29.0.2-1", "28.5", "MB", "2",
                                "passed", "not", "run"]
    assert len({line.index("90:") for line in lines[2:]}) == 1


@pytest.mark.parametrize(("extra", "message"), [
    ('url = "ftp://x"', "repository.url: 'ftp://x' is not an http(s):// or file:// URL"),
    ('signing_key = "ABC"', "repository.signing_key: 'ABC' is not a 40-hex-digit key fingerprint"),
])
def test_bad_repository_settings(tmp_path: Path, extra: str, message: str) -> None:
    text = BASE.format(release="", project="").replace(
        'maintainer = "A B <a@example.invalid>"', f'maintainer = "A B <a@example.invalid>"\n{extra}')
    with pytest.raises(ConfigError) as info:
        config.load(_write(tmp_path, text))
    assert message in str(info.value)


def test_smoke_keys_must_be_commands(tmp_path: Path) -> None:
    project = ('[[projects.keystone.packages]]\nname = "keystone"\ncommands = ["keystone-manage"]\n'
               'smoke = { "keystone-all" = "--help" }\n')
    with pytest.raises(ConfigError, match="smoke: 'keystone-all': keys must be commands"):
        config.load(_write(tmp_path, BASE.format(release="", project=project)))


def test_node_installs_the_leaf_packages_of_each_project() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    assert pipeline.leaves(cfg.projects["keystone"]) == ("keystone",)
    assert pipeline.leaves(cfg.projects["cloudkitty"]) == ("cloudkitty-api", "cloudkitty-processor")


def test_a_generation_written_under_a_private_umask_is_committed_readable(
        tmp_path: Path) -> None:
    """The buildbot master accepts uploads with umask 077: the generation it commits is
    still readable by nginx's workers (dirs 0755, files 0644), links left alone."""
    import os
    paths = repository.Paths(tmp_path / "repo")
    old = os.umask(0o077)
    try:
        new = repository.begin(paths, tmp_path / "log")
        (new / "dists" / "x").mkdir(parents=True)
        (new / "dists" / "x" / "InRelease").write_text("signed")
        (new / "dists" / "x" / "link").symlink_to("InRelease")
        final = repository.commit(paths, new, repository.next_generation(paths))
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): p.lstat().st_mode & 0o7777
             for p in (paths.generations, final, final / "dists", final / "dists" / "x",
                       final / "dists" / "x" / "InRelease")}
    assert modes == {"repo.d": 0o755, "repo.d/000001": 0o755, "repo.d/000001/dists": 0o755,
                     "repo.d/000001/dists/x": 0o755, "repo.d/000001/dists/x/InRelease": 0o644}
    assert (final / "dists" / "x" / "link").is_symlink()


def test_a_held_repository_is_waited_for_saying_so_once_then_refused_naming_the_holder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import fcntl
    paths = repository.Paths(tmp_path / "repo")
    paths.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with paths.lock_file.open("a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        other.write("pid 4242 since 2026-12-01 05:00:00\n")
        other.flush()
        with pytest.raises(repository.RepositoryLocked) as refused:
            with repository.locked(paths, timeout=1.2):
                raise AssertionError("the lock is held by another run")
    said = capsys.readouterr().err
    assert said.count("repository: waiting for ") == 1, said
    assert "(pid 4242 since 2026-12-01 05:00:00), up to 1 s" in said
    assert "locked by another run (pid 4242 since" in str(refused.value)
    with repository.locked(paths, timeout=1):  # released: taken at once, nothing said
        pass
    assert capsys.readouterr().err == ""
