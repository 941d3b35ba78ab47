"""The pipeline end to end on the fixture service: build, check in a clean
chroot, publish into a signed reprepro repository, promote; then the faults.

Real tools: dh-virtualenv, lintian, mmdebstrap, apt in a chroot, reprepro,
gpg and gpgv. The chroot's own Debian packages (python3 ...) come from the
Debian mirror, so this reaches the network; the project itself is offline.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian.deb822 import Deb822
from debian.debfile import DebFile

from tests.conftest import RELEASE, ROOT, Project, readable_dir, require_tools
from tests.integration.test_venv_fixture import SERVICE, service_project
from venvdeb.archive import repository
from venvdeb.core import check_records, images
from venvdeb.core.workdir import shared_cache
from venvdeb.qa import chroot

pytestmark = [pytest.mark.integration, pytest.mark.network, pytest.mark.slow]

STAGING = f"bookworm-{RELEASE}-staging"
PRODUCTION = f"bookworm-{RELEASE}"


def venvdeb(project: Project, *args: str, workdir: Path | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "venvdeb", "--config", str(project.config), "--workdir",
         str(workdir or project.workdir), *args], capture_output=True, text=True, cwd=ROOT)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def listing(repo: Path, codename: str) -> list[str]:
    out = subprocess.run(["reprepro", "-b", str(repo), "--list-format",
                          "${package} ${$type} ${version}\n", "list", codename],
                         capture_output=True, text=True, check=True).stdout
    return sorted(out.splitlines())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def published(fixture_index: Path) -> Iterator[tuple[Project, subprocess.CompletedProcess[str]]]:
    """The fixture service published and promoted, served by ``venvdeb serve`` on
    127.0.0.1 (its url in the config: the node lines and .sources use it)."""
    require_tools("dpkg-buildpackage", "dh_virtualenv", "lintian", "unshare", "mmdebstrap",
                  "reprepro", "gpg", "gpgv", "apt-ftparchive", "nginx")
    base = readable_dir("repo")
    base.chmod(0o711)  # nginx's workers (www-data) pass to the repository, list nothing
    project = service_project(Project(base / "checkout", fixture_index, base / "work"))
    port = free_port()
    project.config.write_text(project.config.read_text().replace(
        "[repository]\n", f'[repository]\nurl = "http://127.0.0.1:{port}"\n', 1))
    venvdeb(project, "serve", "start", "--listen", f"127.0.0.1:{port}", check=True)
    try:
        run = venvdeb(project, "pipeline", "fixture-service", "--release", RELEASE,
                      "--promote", check=True)
        again = venvdeb(project, "serve", "start", check=True)  # now with a generation
        assert again.stdout.startswith("serve: already running"), again.stdout
        yield project, run
    finally:
        venvdeb(project, "serve", "stop")


def test_pipeline_summary_and_node_lines(published: tuple[Project, subprocess.CompletedProcess[str]]
                                         ) -> None:
    project, run = published
    out = run.stdout
    assert "package" in out and "install test" in out
    for package in (f"venv-fixture-service-{RELEASE}", "fixture-service",
                    "python3-fixture-service", f"openstack-wheels-{RELEASE}"):
        row = next(line for line in out.splitlines() if line.startswith(package + " "))
        assert row.split()[-2:] == ["passed", "passed"], row
    assert f"Suites: {PRODUCTION}" in out
    assert "Signed-By: /etc/apt/keyrings/venvdeb-archive-keyring.gpg" in out
    assert "check: " in run.stderr and "purge left nothing behind" in run.stderr


def test_repository_is_signed_and_holds_binaries_and_sources(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    project, _ = published
    repo = project.workdir / "repo"
    assert repo.is_symlink()
    keyring = repo / "venvdeb-archive-keyring.gpg"
    for codename in (STAGING, PRODUCTION):
        result = subprocess.run(["gpgv", "--keyring", str(keyring),
                                 str(repo / "dists" / codename / "InRelease")],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        release = Deb822((repo / "dists" / codename / "Release").read_text())
        assert release["Codename"] == codename and release["Origin"] == "venvdeb-tests"
    held = listing(repo, STAGING)
    assert any(line.startswith("fixture-service dsc 90:1.0.0-") for line in held), held
    assert any(line.startswith(f"openstack-wheels-{RELEASE} deb ") for line in held)
    assert listing(repo, PRODUCTION) == held
    # a signature by another key does not verify: gpgv really checks
    other = tmp_path / "other-key"
    other.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(other)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-generate-key", "other <o@x>",
                    "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
    subprocess.run(["gpg", "--batch", "--output", str(other / "k.gpg"), "--export"], env=env,
                   check=True)
    bad = subprocess.run(["gpgv", "--keyring", str(other / "k.gpg"),
                          str(repo / "dists" / STAGING / "InRelease")], capture_output=True)
    assert bad.returncode != 0


def test_history_records_publish_and_promotion(
        published: tuple[Project, subprocess.CompletedProcess[str]]) -> None:
    project, _ = published
    history = repository.read_history(project.workdir / "repo")
    actions = [(h["Action"], h["Codename"]) for h in history]
    assert ("publish", STAGING) in actions and ("promote", PRODUCTION) in actions
    promote = next(h for h in history if h["Action"] == "promote")
    publish = next(h for h in history if h["Action"] == "publish" and "fixture-service" in
                   h["Packages"])
    assert promote["From"] == STAGING and promote["From-Generation"] == publish["Generation"]
    assert "fixture-service 90:1.0.0-" in promote["Packages"]
    assert (project.workdir / "repo" / "dists" / STAGING / "snapshots" /
            publish["Generation"] / "Release").is_file()


def test_a_node_installs_from_the_printed_lines(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """A clean chroot configured with exactly the lines the pipeline printed, installing
    over HTTP from venvdeb serve's nginx (the chroot shares the host's network)."""
    project, run = published
    lines = run.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("On a bookworm node"))
    script = "\n".join(line[2:] for line in lines[start + 1:] if line.startswith("  "))
    assert "apt-get install python3-fixture-service" in script, "the leaf package"
    url = next(line.split()[1] for line in script.splitlines() if line.startswith("URIs: "))
    assert url.startswith("http://127.0.0.1:"), script
    sources = project.workdir / "repo" / "sources" / f"{PRODUCTION}.sources"
    assert Deb822(sources.read_text())["URIs"] == url
    status = venvdeb(project, "serve", "status", check=True).stdout
    assert f"answering: nginx serving {project.workdir / 'repo'} at {url}/" in status, status
    for hidden in ("db/packages.db", "conf/distributions", "venvdeb/history"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{url}/{hidden}", timeout=10)
        assert caught.value.code == 404, hidden
    log = tmp_path / "node.log"
    image = images.tarball("minbase", "bookworm", "amd64", "http://deb.debian.org/debian",
                           shared_cache() / "chroot", log)
    access_log = project.workdir / "http" / "access.log"
    served_before = access_log.read_text()
    with chroot.session(image, log) as box:  # no bind of the workdir: HTTP only
        box.put("/etc/apt/apt.conf.d/90yes", 'APT::Get::Assume-Yes "true";\n')
        # the keyring over apt's own HTTP: apt-helper, which minbase has (curl it lacks)
        assert "/usr/lib/apt/apt-helper download-file " in script, script
        result = box.sh(script, what="the printed lines", check=False, network=True)
        assert result.returncode == 0, result.output[-3000:]
        served = access_log.read_text()[len(served_before):]
        for path in ("/venvdeb-archive-keyring.gpg", f"/dists/{PRODUCTION}/InRelease",
                     "/pool/main/f/fixture-service/python3-fixture-service_"):
            assert f'"GET {path}' in served, (path, served[-3000:])
        keyring = box.run(["sha256sum", "/etc/apt/keyrings/venvdeb-archive-keyring.gpg"]).output
        served_keyring = project.workdir / "repo" / "venvdeb-archive-keyring.gpg"
        assert hashlib.sha256(served_keyring.read_bytes()).hexdigest() in keyring
        out = box.run(["fixture-manage", "--version"], check=False).output
        assert "1.0.0" in out
        policy = box.run(["apt-cache", "policy", "fixture-service"]).output
        assert f"{url} {PRODUCTION}/main" in policy, policy
        # hardening: the config directory is root's, the sudo rule pins the config file
        assert box.run(["stat", "-c", "%U:%G %a", "/etc/fixture",
                        "/etc/fixture/fixture.conf"]).output.split("\n")[:2] == [
            "root:fixture 750", "root:fixture 640"]
        result = box.sh("apt-get install sudo && visudo -cf /etc/sudoers.d/fixture-service && "
                        "usermod -s /bin/sh fixture", what="sudo", check=False, network=True)
        assert result.returncode == 0, result.output[-3000:]
        allowed = box.run(["su", "fixture", "-c",
                           "sudo -n fixture-manage /etc/fixture/fixture.conf status"], check=False)
        assert allowed.returncode == 0, allowed.output
        assert f"running from /opt/venvs/fixture-service-{RELEASE}" in allowed.output
        box.put("/tmp/evil.conf", "[DEFAULT]\n")
        refused = box.run(["su", "fixture", "-c", "sudo -n fixture-manage /tmp/evil.conf id"],
                          check=False)
        assert refused.returncode != 0 and "running from" not in refused.output, refused.output
        assert "password is required" in refused.output or "not allowed" in refused.output


def test_rerun_changes_nothing(published: tuple[Project, subprocess.CompletedProcess[str]]
                               ) -> None:
    project, _ = published
    before = os.readlink(project.workdir / "repo")
    run = venvdeb(project, "pipeline", "fixture-service", "--release", RELEASE, "--promote",
                  check=True)
    assert os.readlink(project.workdir / "repo") == before
    for stage in ("reqdeb: up to date", "build: up to date", "check: up to date",
                  "publish: up to date", "promote: up to date"):
        assert stage in run.stderr, run.stderr[-3000:]


# --- faults: each leaves the repository exactly as it was -----------------------------------


def _copy(project: Project, tmp_path: Path, *, repository: bool = True) -> Path:
    """The published workdir copied; ``repository=False``: without its repository."""
    work = tmp_path / "work"
    shutil.copytree(project.workdir, work, symlinks=True,
                    ignore=shutil.ignore_patterns("S.gpg-agent*"))
    if not repository:
        shutil.rmtree(work / "repo.d")
        (work / "repo").unlink()
    return work


def _state(work: Path) -> tuple[str, list[str], list[str]]:
    repo = work / "repo"
    return os.readlink(repo), listing(repo, STAGING), listing(repo, PRODUCTION)


def _venv_deb(work: Path) -> Path:
    [deb] = work.glob(f"releases/{RELEASE}/bookworm/projects/fixture-service/venv-*.deb")
    return deb


def test_unchecked_and_failed_packages_are_refused(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    project, _ = published
    work = _copy(project, tmp_path)
    before = _state(work)
    deb = _venv_deb(work)
    ledger = work / "state" / "checks.json"
    check_records.record(ledger, [deb], "install", False, "simulated failure")
    result = venvdeb(project, "publish", "--release", RELEASE, "fixture-service", workdir=work)
    assert result.returncode != 0
    assert f"{deb.name} has failed install" in result.stderr
    assert "venvdeb check fixture-service" in result.stderr
    assert _state(work) == before


def test_a_failing_install_test_is_recorded_and_blocks_publishing(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """A smoke command that fails in the chroot: check fails, publish refuses."""
    project, _ = published
    work = _copy(project, tmp_path)
    before = _state(work)
    broken = SERVICE.replace('commands = ["fixture-manage", "fixture-service"]',
                             'commands = ["fixture-manage", "fixture-service"]\n'
                             'smoke = { "fixture-manage" = "--no-such-option" }')
    service_project(project, broken)
    try:
        check = venvdeb(project, "check", "fixture-service", "--release", RELEASE, "--force",
                        workdir=work)
        assert check.returncode != 0
        assert "install test of fixture-service" in check.stderr
        assert "fixture-manage --no-such-option failed" in check.stderr
        publish = venvdeb(project, "publish", "--release", RELEASE, workdir=work)
        assert publish.returncode != 0 and "has failed install" in publish.stderr
        assert _state(work) == before
    finally:
        service_project(project)


def test_a_service_that_does_not_start_fails_the_install_test_with_its_journal(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """The fixture's daemon told to fail: on the booted node its unit restarts until
    systemd gives up; the install test names it with its journal; nothing is published."""
    project, _ = published
    work = _copy(project, tmp_path)
    before = _state(work)
    unit = 'units = [{ name = "fixture-service", command = "fixture-service", '
    assert unit in SERVICE.replace("{{", "{").replace("}}", "}")
    broken = SERVICE.replace('command = "fixture-service", description',
                             'command = "fixture-service", arguments = ["--fail"], description')
    assert broken != SERVICE
    service_project(project, broken)
    try:
        venvdeb(project, "build", "fixture-service", "--release", RELEASE, workdir=work,
                check=True)
        check = venvdeb(project, "check", "fixture-service", "--release", RELEASE, "--only",
                        "install", "--force", workdir=work)
        assert check.returncode != 0
        assert "fixture-service.service did not start: failed" in check.stderr, check.stderr
        assert "fixture-service: cannot start: told to fail (--fail)" in check.stderr, \
            "the unit's journal is in the message"
        publish = venvdeb(project, "publish", "--release", RELEASE, workdir=work)
        assert publish.returncode != 0
        assert _state(work) == before
    finally:
        service_project(project)


def test_same_version_other_content_is_refused(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    project, _ = published
    work = _copy(project, tmp_path)
    before = _state(work)
    deb = _venv_deb(work)
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    (tree / "opt" / "venvs" / f"fixture-service-{RELEASE}" / "EXTRA").write_text("changed\n")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True,
                   capture_output=True)
    ledger = work / "state" / "checks.json"
    changed = venvdeb(project, "publish", "--release", RELEASE, workdir=work)
    assert changed.returncode != 0 and "changed since it was checked" in changed.stderr
    check_records.record(ledger, [deb], "lintian", True)
    check_records.record(ledger, [deb], "install", True)
    result = venvdeb(project, "publish", "--release", RELEASE, workdir=work)
    assert result.returncode != 0
    assert f"is already in {STAGING} with different content ({deb.name})" in result.stderr
    assert _state(work) == before


def test_corrupt_deb_is_refused(published: tuple[Project, subprocess.CompletedProcess[str]],
                                tmp_path: Path) -> None:
    project, _ = published
    work = _copy(project, tmp_path)
    before = _state(work)
    deb = _venv_deb(work)
    deb.write_bytes(deb.read_bytes()[:5000])
    result = venvdeb(project, "publish", "--release", RELEASE, workdir=work)
    assert result.returncode != 0
    assert deb.name in result.stderr.splitlines()[-1]
    assert _state(work) == before


def test_unusable_signing_key_is_refused(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    project, _ = published
    work = _copy(project, tmp_path, repository=False)
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    text = project.config.read_text()
    project.config.write_text(text.replace(
        "[repository]\n", f'[repository]\nsigning_key = "{"AB" * 20}"\ngnupg_home = "{home}"\n'))
    try:
        result = venvdeb(project, "publish", "--release", RELEASE, workdir=work)
    finally:
        project.config.write_text(text)
    assert result.returncode != 0
    assert f"signing key {'AB' * 20}" in result.stderr and "cannot sign" in result.stderr
    assert not (work / "repo").exists()


def test_an_advisory_on_a_pin_refuses_promotion_until_waived(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """An OSV record affecting fixture-lib 1.0.0 (in the fixture index, in the service's
    venv): with [audit] advisories configured, promote is refused naming the advisory
    and the packages that carry it, production unchanged; waived for the release, the
    same promote goes through."""
    project, _ = published
    work = _copy(project, tmp_path, repository=False)
    checkout = tmp_path / "checkout"
    shutil.copytree(project.root, checkout, symlinks=True)
    audited = Project(checkout, project.index, work)
    venvdeb(audited, "publish", "--release", RELEASE, check=True)
    export = tmp_path / "osv"
    export.mkdir()
    (export / "PYSEC-2099-1.json").write_text(json.dumps({
        "id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001"], "details": "test record",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "fixture_lib"},
                      "ranges": [{"type": "ECOSYSTEM",
                                  "events": [{"introduced": "0"}, {"fixed": "1.1.0"}]}]}]}))
    config = audited.config.read_text()
    audited.config.write_text(config + f'\n[audit]\nadvisories = "{export}"\n')
    refused = venvdeb(audited, "promote", "--release", RELEASE)
    assert refused.returncode == 3, refused.stderr
    assert f"promote refused: 1 pin of {RELEASE}/bookworm carry open advisories: PYSEC-2099-1 " \
           f"in fixture-lib 1.0.0 (carried by openstack-wheels-{RELEASE} " \
           f"venv-fixture-service-{RELEASE})" in refused.stderr, refused.stderr
    assert listing(work / "repo", PRODUCTION) == []
    # the pipeline's table: one open advisory on the packages that carry wheels
    rerun = venvdeb(audited, "pipeline", "fixture-service", "--release", RELEASE, check=True)
    rows = {line.split()[0]: line.split() for line in rerun.stdout.splitlines()
            if line.startswith(("openstack-wheels-", "venv-fixture-service-", "fixture-service "))}
    assert rows[f"openstack-wheels-{RELEASE}"][4] == "1", rerun.stdout
    assert rows[f"venv-fixture-service-{RELEASE}"][4] == "1", rerun.stdout
    assert rows["fixture-service"][4] == "-", rerun.stdout
    waived = (config + f'\n[audit]\nadvisories = "{export}"\n'
              f'[[audit.waivers]]\nid = "CVE-2099-0001"\nrelease = "{RELEASE}"\n'
              f'reason = "the test says so"\nexpires = 2099-12-31\n')
    # a blocked license (every fixture wheel declares Apache-2.0) refuses it too
    audited.config.write_text(waived.replace("[audit]\n",
                                             '[audit]\nblocked_licenses = ["apache-2.0"]\n'))
    blocked = venvdeb(audited, "promote", "--release", RELEASE)
    assert blocked.returncode == 3, blocked.stderr
    assert f"of {RELEASE}/bookworm declare a blocked license: " in blocked.stderr
    assert f"fixture-lib 1.0.0 (Apache-2.0) (carried by openstack-wheels-{RELEASE} " \
           f"venv-fixture-service-{RELEASE})" in blocked.stderr, blocked.stderr
    assert listing(work / "repo", PRODUCTION) == []
    audited.config.write_text(waived)
    promoted = venvdeb(audited, "promote", "--release", RELEASE, check=True)
    assert "0 advisories on 0 pins of " in promoted.stderr and ", 1 waived" in promoted.stderr
    assert listing(work / "repo", PRODUCTION) == listing(work / "repo", STAGING)
    report = (work / "releases" / RELEASE / "bookworm" / "audit" / "audit.md").read_text()
    assert "| fixture-lib | 1.0.0 | PYSEC-2099-1 (CVE-2099-0001) | 1.1.0 |" in report
    assert "waived until 2099-12-31" in report and "the test says so" in report


def test_a_locked_repository_fails_clearly(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    project, _ = published
    work = _copy(project, tmp_path)
    before = _state(work)
    with (work / "repo.lock").open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        started = time.monotonic()
        result = venvdeb(project, "publish", "--release", RELEASE, "--lock-timeout", "2",
                         workdir=work)
        waited = time.monotonic() - started
    assert result.returncode == 75, result.stderr
    assert "is locked by another run" in result.stderr and waited >= 2
    assert os.readlink(work / "repo") == before[0]


#: reprepro as publish runs it, held so that the test kills publish at a known point
#: (polling for a reprepro child missed the short ones on a fast machine: publish then
#: finished unkilled, and the old loop waited out its 60 s)
HELD_REPREPRO = """#!/bin/sh
# venvdeb passes on no variable of ours: the mark and the hold are written in
if [ {hold} = before ]; then
    touch {mark}
    sleep 300
fi
/usr/bin/reprepro "$@"
rc=$?
if [ {hold} = after ]; then
    touch {mark}
    sleep 300
fi
exit $rc
"""


def test_killed_publish_leaves_the_old_state_and_a_rerun_completes(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """SIGKILL while reprepro is about to run, then once it has written (held there by a
    wrapper); then a rerun gives the same repository."""
    project, _ = published
    work = _copy(project, tmp_path, repository=False)
    shim = tmp_path / "bin"
    shim.mkdir()
    for hold in ("before", "after"):
        err = tmp_path / f"publish-{hold}.err"
        mark = tmp_path / f"held-{hold}"
        (shim / "reprepro").write_text(HELD_REPREPRO.format(hold=hold, mark=mark))
        (shim / "reprepro").chmod(0o755)
        env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
        with err.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "venvdeb", "--config", str(project.config), "--workdir",
                 str(work), "publish", "--release", RELEASE], cwd=ROOT, start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not mark.exists():
            time.sleep(0.05)
        assert mark.exists(), _no_reprepro(proc, work, err)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (work / "repo").exists(), "a killed first publish leaves no repository"
    venvdeb(project, "publish", "--release", RELEASE, workdir=work, check=True)
    venvdeb(project, "promote", "--release", RELEASE, workdir=work, check=True)
    reference = project.workdir / "repo"
    assert listing(work / "repo", STAGING) == listing(reference, STAGING)
    assert listing(work / "repo", PRODUCTION) == listing(reference, PRODUCTION)
    assert [p.name for p in (work / "repo.d").iterdir() if p.name.startswith("tmp-")] == []


def _no_reprepro(proc: subprocess.Popen[bytes], work: Path, err: Path) -> str:
    """Why publish ran no reprepro: it ended (how), or what it is doing."""
    logs = sorted(work.glob("logs/**/publish.log"))
    last = [line for line in logs[0].read_text().splitlines() if line.startswith("$ ")][-1:] \
        if logs else []
    if proc.poll() is not None:
        return f"publish exited {proc.returncode} before running reprepro: " \
               f"{err.read_text()[-1500:]}; its log's last command: {last}"
    children = subprocess.run(["ps", "--ppid", str(proc.pid), "-o", "pid,etimes,stat,args"],
                              capture_output=True, text=True).stdout
    return f"publish never ran reprepro (still running); its children: {children}; " \
           f"its log's last command: {last}"


def test_two_publications_at_once_serialise(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """What two buildbot builds publishing together do: one waits for the other."""
    project, _ = published
    work = _copy(project, tmp_path, repository=False)
    argv = [sys.executable, "-m", "venvdeb", "--config", str(project.config), "--workdir",
            str(work), "publish", "--release", RELEASE]
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), (p.stdout.read() if p.stdout else "")
                + (p.stderr.read() if p.stderr else "")) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    outs = sorted(out for _, out in results)
    assert any("up to date" in out for out in outs) and any("files into" in out for out in outs)
    assert listing(work / "repo", STAGING) == listing(project.workdir / "repo", STAGING)
    generations = [p.name for p in (work / "repo.d").iterdir()]
    assert generations == ["000001"], generations


# --- dry runs: plan, change nothing ----------------------------------------------------------


def _digest(work: Path) -> dict[str, str]:
    """Every path of the workdir with its type, mode, and content or link target."""
    out = {}
    for path in sorted(work.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = f"link {os.readlink(path)}"
        elif path.is_file():
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = "dir" if path.is_dir() else "special"
        out[str(path.relative_to(work))] = f"{st.st_mode:o} {what}"
    return out


def _dry_run(project: Project, work: Path, config: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "venvdeb", "--config", str(config), "--workdir", str(work),
         "pipeline", "fixture-service", "--release", RELEASE, "--promote", "--dry-run"],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def test_dry_run_on_the_published_workdir_has_nothing_to_do_and_changes_no_file(
        published: tuple[Project, subprocess.CompletedProcess[str]]) -> None:
    project, _ = published
    before = _digest(project.workdir)
    lines = _dry_run(project, project.workdir, project.config)
    assert lines == ["dry run: nothing to do: every stage is up to date"], lines
    assert _digest(project.workdir) == before


def test_dry_run_after_a_constraint_change_lists_what_the_pipeline_then_does(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """fixture-lib 1.0.0 -> 1.1.0 in upper-constraints: fixture-service's closure holds it,
    so the dry run lists lock, wheels, reqdeb, its build and check, publish and promote,
    and nothing else; the real pipeline then does exactly those, and a dry run after it
    has nothing to do."""
    project, _ = published
    checkout = tmp_path / "checkout"
    shutil.copytree(project.root, checkout)
    work = _copy(project, tmp_path)
    constraints = checkout / "requirements" / RELEASE / "upper-constraints.txt"
    constraints.write_text(constraints.read_text().replace("fixture-lib===1.0.0",
                                                           "fixture-lib===1.1.0"))
    config = checkout / "pipeline.toml"
    before = _digest(work)
    lines = _dry_run(project, work, config)
    assert _digest(work) == before, "the dry run changed the workdir"
    assert lines[-1] == (f"dry run: 7 would run: lock {RELEASE}/bookworm, wheels {RELEASE}/"
                         f"bookworm, reqdeb {RELEASE}/bookworm, build fixture-service, check "
                         f"fixture-service, publish {STAGING}, promote {PRODUCTION}"), lines
    assert f"would run: lock {RELEASE}/bookworm: pins change: fixture-lib 1.0.0 -> 1.1.0" \
        in lines, lines
    assert "would run: build fixture-service: its closure changes: fixture-lib 1.0.0 -> 1.1.0" \
        in lines, lines
    run = subprocess.run(
        [sys.executable, "-m", "venvdeb", "--config", str(config), "--workdir", str(work),
         "pipeline", "fixture-service", "--release", RELEASE, "--promote"],
        capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    for done in ("lock: compiled", "reqdeb: built", "build: built", "install test passed",
                 f"files into {STAGING}", f"packages from {STAGING} to {PRODUCTION}"):
        assert done in run.stderr, (done, run.stderr[-3000:])
    assert "90:1.0.0-0+deb12u2" in run.stdout, run.stdout
    assert _dry_run(project, work, config) == ["dry run: nothing to do: every stage is up to "
                                               "date"]


def test_trixie_beside_bookworm(published: tuple[Project, subprocess.CompletedProcess[str]],
                                tmp_path: Path) -> None:
    """The release listed for trixie too, in the published workdir: bookworm's stages have
    nothing to do and its suites stay as they were; trixie gets its own lock (pip-compile
    in trixie's tree, on Python 3.13), wheels, requirements package, a build by sbuild in
    a trixie chroot, trixie's lintian, the install test on a booted trixie node, and its
    own suite, with versions above bookworm's and Depends on Python 3.13."""
    project, _ = published
    checkout = tmp_path / "checkout"
    shutil.copytree(project.root, checkout)
    work = _copy(project, tmp_path)
    config = checkout / "pipeline.toml"
    config.write_text(config.read_text().replace('distributions = ["bookworm"]',
                                                 'distributions = ["bookworm", "trixie"]'))
    bookworm = _state(work)
    run = subprocess.run(
        [sys.executable, "-m", "venvdeb", "--config", str(config), "--workdir", str(work),
         "pipeline", "fixture-service", "--release", RELEASE],
        capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-4000:]
    assert _state(work)[1:] == bookworm[1:], "bookworm's suites are unchanged"
    for said in (f"publish: 0 files into {STAGING}", "lock: up to date: 4 entries in "
                 f"{work}/releases/{RELEASE}/bookworm/", "build: up to date:",
                 f"lock: compiled: 4 entries in {work}/releases/{RELEASE}/trixie/"):
        assert said in run.stderr, (said, run.stderr[-3000:])
    lock = (work / "releases" / RELEASE / "trixie" / "lock" / "lock.txt").read_text()
    assert "trixie, Python 3.13" in lock.splitlines()[1], lock[:300]
    assert "with the sbuild builder" in run.stderr and "install test passed" in run.stderr
    # the pipeline lints in its check stage, beside the install test
    check_log = (work / "logs" / RELEASE / "trixie" / "check-fixture-service.log").read_text()
    assert re.search(r'"root": "[^"]*/trees/trixie-amd64-tree-[0-9a-f]+".* -- lintian --fail-on',
                     check_log), "trixie's own lintian, in its tree"
    trixie = listing(work / "repo", f"trixie-{RELEASE}-staging")
    assert f"venv-fixture-service-{RELEASE} deb 90:1.0.0-0+deb13u1" in trixie, trixie
    assert "fixture-service dsc 90:1.0.0-0+deb13u1" in trixie, trixie
    [deb] = work.glob(f"releases/{RELEASE}/trixie/projects/fixture-service/venv-*.deb")
    depends = DebFile(str(deb)).debcontrol()["Depends"]
    assert "python3 (>= 3.13~)" in depends and "python3 (<< 3.14)" in depends, depends
    members = [m.name for m in DebFile(str(deb)).data.tgz().getmembers()]
    assert any("/lib/python3.13/site-packages/" in m for m in members)
    assert not any(m.endswith(f"fixture-service-{RELEASE}/.gitignore") for m in members)
    assert f"  Suites: trixie-{RELEASE}-staging" in run.stdout.splitlines(), run.stdout


def test_an_upload_is_verified_whole_before_anything_is_published(
        published: tuple[Project, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """A worker's 'venvdeb upload' and the publisher's 'venvdeb accept', on copies of the
    published workdir: the publisher's without a repository. Each fault rejects the whole
    upload with one line naming the file, and leaves no repository; then the good upload
    is published (and removed from incoming/), a second time it is up to date, and the
    same version with other content is refused, the repository unchanged."""
    project, _ = published
    worker = _copy(project, tmp_path / "w")
    publisher = _copy(project, tmp_path / "p", repository=False)  # (short: gpg's socket path)
    (publisher / "state" / "checks.json").unlink()  # it has seen none of the worker's checks
    good = tmp_path / "upload"
    made = venvdeb(project, "upload", "fixture-service", "--release", RELEASE, "--to",
                   str(good), workdir=worker, check=True)
    assert f"upload: fixture-service 90:1.0.0-0+deb12u1, openstack-wheels-{RELEASE}" \
           in made.stdout, made.stdout
    names = sorted(p.name for p in good.iterdir())
    assert "venvdeb-checks.json" in names and any(n.endswith(".buildinfo") for n in names)
    [changes] = good.glob("fixture-service_*.changes")
    [venv] = good.glob("venv-fixture-service-*.deb")

    def accept(upload: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return venvdeb(project, "accept", str(upload), "--release", RELEASE, "--uploader",
                       "worker1", *extra, workdir=publisher)

    def fault(name: str) -> Path:
        copy = tmp_path / name
        shutil.copytree(good, copy)
        return copy

    def truncate(p: Path) -> None:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

    faults = {
        "missing": (lambda u: (u / venv.name).unlink(),
                    f"{venv.name}, listed in {changes.name}, is missing from the upload"),
        "cut-short": (lambda u: truncate(u / venv.name),  # a worker killed mid-upload
                      f"{venv.name} is not the file {changes.name} lists"),
        "unlisted": (lambda u: (u / "extra.sh").write_text("#!/bin/sh\n"),
                     "extra.sh is in the upload but in no .changes or .dsc"),
        "failed-check": (lambda u: (u / "venvdeb-checks.json").write_text(
            (u / "venvdeb-checks.json").read_text().replace('"install": "passed"',
                                                           '"install": "failed"')),
                         "has failed install on the worker: refusing the upload"),
        "deferred-lintian": (lambda u: (u / "venvdeb-checks.json").write_text(
            (u / "venvdeb-checks.json").read_text().replace('"lintian": "passed"',
                                                           '"lintian": "deferred"')),
                             "has not passed lintian on the worker: refusing the upload"),
        "no-checks": (lambda u: (u / "venvdeb-checks.json").unlink(),
                      "the upload has no venvdeb-checks.json"),
        "other-distribution": (lambda u: (u / changes.name).write_text(
            (u / changes.name).read_text().replace("Distribution: bookworm",
                                                   "Distribution: trixie")),
                               f"{changes.name} is for distribution 'trixie', not bookworm"),
    }
    for name, (damage, said) in faults.items():
        upload = fault(name)
        damage(upload)
        result = accept(upload)
        assert result.returncode != 0 and said in result.stderr, (name, result.stderr[-2000:])
        assert not (publisher / "repo").exists(), f"{name}: nothing was published"
    bad_name = accept(fault("bad-uploader"), "--uploader", "w;rm -rf /")
    assert bad_name.returncode != 0 and "--uploader 'w;rm -rf /'" in bad_name.stderr
    # as an unprivileged worker uploads it: the install test left to the publisher, which
    # runs it on the upload's own .debs (a booted node here), then publishes
    incoming = publisher / "incoming" / "fixture-service-1"
    incoming.parent.mkdir()
    shutil.copytree(good, incoming)
    checks = incoming / "venvdeb-checks.json"
    checks.write_text(checks.read_text().replace('"install": "passed"', '"install": "deferred"'))
    done = accept(incoming)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "accept: install test of fixture-service 90:1.0.0-0+deb12u1 here" in done.stderr
    assert not incoming.exists(), "a published upload leaves incoming/"
    ledger = publisher / "state" / "checks.json"
    assert check_records.result(ledger, venv, "install") == "passed"
    assert "on worker" not in json.loads(ledger.read_text())[
        hashlib.sha256(venv.read_bytes()).hexdigest()]["install"]["detail"]
    after = _state(publisher)
    assert f"venv-fixture-service-{RELEASE} deb 90:1.0.0-0+deb12u1" in after[1], after
    assert "fixture-service dsc 90:1.0.0-0+deb12u1" in after[1], after
    assert any(line.startswith(f"openstack-wheels-{RELEASE} deb") for line in after[1])
    history = repository.read_history(publisher / "repo")[-1]
    assert history["Action"] == "accept" and history["Uploader"] == "worker1", history
    assert "up to date" in accept(fault("again")).stdout, "a second time: nothing to do"
    # the same version, other content, consistent with its own .changes and checks
    other = fault("other-content")
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-R", str(other / venv.name), str(tree)], check=True)
    (tree / "opt" / "venvs" / f"fixture-service-{RELEASE}" / "EXTRA").write_text("changed\n")
    old_sum, old_size = hashlib.sha256(venv.read_bytes()).hexdigest(), venv.stat().st_size
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(other / venv.name)],
                   check=True, capture_output=True)
    new = other / venv.name
    new_sum, new_size = hashlib.sha256(new.read_bytes()).hexdigest(), new.stat().st_size
    for name in (changes.name, "venvdeb-checks.json"):
        text = (other / name).read_text().replace(f"{old_sum} {old_size} ",
                                                  f"{new_sum} {new_size} ")
        (other / name).write_text(text.replace(old_sum, new_sum))
    result = accept(other)
    assert result.returncode != 0 and \
        f"is already in {STAGING} with different content ({venv.name})" in result.stderr, \
        result.stderr[-2000:]
    assert _state(publisher) == after, "the repository is unchanged"
    assert check_records.result(publisher / "state" / "checks.json", new, "install") is None
