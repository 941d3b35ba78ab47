"""``venvdeb publish`` and ``venvdeb promote``: the signed repository's stages.

publish: the release's requirements package and every project's binary and
source packages, each having passed lintian and the install test, into the
``<dist>-<release>-staging`` codename. promote: what staging holds into
``<dist>-<release>``. Both change the repository all or nothing
(venvdeb.archive.repository) and append to its history.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from debian.debfile import DebFile
from debian.debian_support import Version

from venvdeb.archive import http, repository, signing, upload
from venvdeb.archive.repository import Stage
from venvdeb.core import check_records
from venvdeb.core.build_record import TOOL_PACKAGE, project_record, reqdeb_record, tool_record
from venvdeb.core.config import Config
from venvdeb.core.errors import AdvisoriesFound, AdvisoriesUnavailable, LicensesBlocked, PublishError
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.progress import say
from venvdeb.core.target import Target, project_on
from venvdeb.core.workdir import Workdir
from venvdeb.debian.requirements_package import package_name
from venvdeb.qa import audit, candidates, gate, install_test, licenses

NODE_KEYRING = "/etc/apt/keyrings/" + signing.KEYRING
DEFAULT_LOCK_TIMEOUT = 300.0


@contextmanager
def signing_key(config: Config, work: Workdir, log: Path) -> Iterator[signing.SigningKey]:
    """The key; the managed home's gpg-agent stopped afterwards, an operator's left alone."""
    repo = config.repository
    with signing.session(repo.gnupg_home or Path.home() / ".gnupg", repo.signing_key,
                         work.keys, log, uid=f"{signing.KEY_NAME} ({repo.origin}) "
                                             f"<{repo.maintainer.split('<')[1]}") as key:
        yield key


def url(config: Config, work: Workdir) -> str:
    return config.repository.url or f"file://{work.repo}"


def _files(work: Workdir, t: Target, projects: Sequence[str],
           tool: bool = False) -> dict[Path, str]:
    """Every file to publish, with the project it belongs to ("" for the
    requirements package, venvdeb for the tool)."""
    owner = {f: "" for f in reqdeb_record(work, t).debs}
    for name in projects:
        owner.update({f: name for f in project_record(work, t, name).files})
    if tool:
        owner.update({f: TOOL_PACKAGE for f in tool_record(work, t.distribution.name).files})
    return owner


def dry_run(work: Workdir, t: Target, projects: Sequence[str], *,
            stage: Stage = "staging", tool: bool = False) -> Planned:
    """Pure: the files against what the codename's index lists (no reprepro, no key)."""
    codename = repository.codename(t.distribution.name, t.release.name, stage)
    current = repository.Paths(work.repo).current()
    held = repository.published(current, codename, t.distribution.architecture) \
        if current else {}
    missing = []
    for path in _files(work, t, projects, tool):
        it = repository.item(path)
        entry = held.get(it.key)
        if entry is None or entry.version != it.version:
            missing.append(f"{it.package} {it.version}")
    if not missing:
        return Planned("publish", codename, False, "it holds every file")
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return Planned("publish", codename, True, f"{len(missing)} new: {shown}")


def _items(work: Workdir, t: Target, projects: Sequence[str], into: Path,
           tool: bool = False) -> list[repository.Item]:
    """The files copied into ``into`` (under the repository lock), each copy checked:
    its bytes passed lintian and the install test."""
    owner = _files(work, t, projects, tool)
    items = []
    known = check_records.known_names(work.checks)
    for path, name in owner.items():
        it = repository.stage(path, into)
        items.append(it)
        if it.kind != "deb":
            continue
        for check in check_records.CHECKS:
            result = check_records.result(work.checks, it.path, check, it.sha256)
            if result == "passed":
                continue
            how = ("'venvdeb tooldeb'" if name == TOOL_PACKAGE else
                   f"'venvdeb check {name} --release {t.release.name}'"
                   if name else "'venvdeb check PROJECT' for a project using it")
            if known.get(it.path.name, it.sha256) != it.sha256:
                raise PublishError(f"{it.path.name} changed since it was checked (damaged or "
                                   f"rebuilt): refusing to publish it",
                                   hint=f"rebuild it and run {how}")
            state = "failed" if result == "failed" else "not passed"
            raise PublishError(f"{it.path.name} has {state} {check}: refusing to publish it",
                               hint=f"fix it and run {how}")
    return items


def _expected(base: Path, codename: str, items: Sequence[repository.Item], log: Path) -> None:
    held = repository.listing(base, codename, log)
    for it in items:
        entry = held.get(it.key)
        if entry is None or entry.version != it.version:
            raise PublishError(f"after publishing, {codename} lacks {it.package} {it.version}",
                               log=log)


def _change(config: Config, work: Workdir, key: signing.SigningKey, log: Path,
            codename: str, act: object, record: dict[str, str]) -> str:
    """Copy, change with ``act(base)``, snapshot, verify, record, swap in."""
    paths = repository.Paths(work.repo)
    new = repository.begin(paths, log)
    try:
        repository.write_conf(new, config, key)
        keyring, _ = signing.export(key, new, log)
        repository.export(new, key, log)
        act(new)  # type: ignore[operator]
        generation = repository.next_generation(paths)
        repository.snapshot(new, codename, generation, key, log)
        for suite in repository.suites(config):
            signing.verify(new / "dists" / suite.codename / "InRelease", keyring, log)
            sources = new / "sources" / f"{suite.codename}.sources"
            sources.parent.mkdir(exist_ok=True)
            sources.write_text(_sources(config, work, suite.codename))
        repository.history(new, {**record, "Generation": generation})
        repository.commit(paths, new, generation)
        return generation
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


def _sources(config: Config, work: Workdir, suite: str) -> str:
    return repository.sources_entry(url(config, work), suite, NODE_KEYRING)


def _same_config(config: Config, work: Workdir, current: Path,
                 key: signing.SigningKey) -> bool:
    """The repository's reprepro config and nodes' ``.sources`` (its URL: ``[repository]
    url``, e.g. venvdeb serve's) are what the config makes now."""
    if (current / "conf" / "distributions").read_text() != \
            repository.distributions_conf(config, key.fingerprint):
        return False
    for suite in repository.suites(config):
        path = current / "sources" / f"{suite.codename}.sources"
        if not path.exists() or path.read_text() != _sources(config, work, suite.codename):
            return False
    return True


@contextmanager
def _checked_then_key(config: Config, work: Workdir, t: Target, projects: Sequence[str],
                      into: Path, tool: bool, log: Path
                      ) -> Iterator[tuple[list[repository.Item], signing.SigningKey]]:
    """The checked copies first: an unchecked file is refused before the key is opened."""
    items = _items(work, t, projects, into, tool)
    with signing_key(config, work, log) as key:
        yield items, key


def run_publish(config: Config, work: Workdir, t: Target, projects: Sequence[str], *,
                stage: Stage = "staging", tool: bool = False,
                lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Outcome:
    log = work.fresh_log(t.logs, "publish")
    codename = repository.codename(t.distribution.name, t.release.name, stage)
    paths = repository.Paths(work.repo)
    # the files copied and checked under the lock, so none can change between
    # check and import; the key under it too: one gpg user at a time
    with repository.locked(paths, lock_timeout), repository.incoming(paths) as into, \
            _checked_then_key(config, work, t, projects, into, tool, log) as (items, key):
        current = paths.current()
        held = repository.listing(current, codename, log) if current else {}
        steps = repository.plan(items, held, current or work.repo, codename)
        todo = [s for s in steps if s.action == "include"]
        if not todo and current is not None and _same_config(config, work, current, key):
            return Outcome("publish", codename,
                           f"publish: up to date: {codename} holds all {len(items)} files",
                           changed=False)
        say(f"publish: {len(todo)} of {len(items)} files into {codename}")

        def act(base: Path) -> None:
            repository.include(base, codename, todo, key, log)
            _expected(base, codename, items, log)

        generation = _change(config, work, key, log, codename, act, {
            "Action": "publish", "Codename": codename,
            "Packages": "\n " + "\n ".join(f"{s.item.package} {s.item.kind} {s.item.version}"
                                         + (f" (was {s.replaces})" if s.replaces else "")
                                         for s in todo) if todo else "(none: new config)",
            "Signed-By": key.fingerprint})
    return Outcome("publish", codename,
                   f"publish: {len(todo)} files into {codename} (generation {generation})")


def run_accept(config: Config, work: Workdir, t: Target, directory: Path, *,
               uploader: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Outcome:
    """An upload (venvdeb.archive.upload) into the staging codename: verified whole
    before the lock and the key are taken, its files copied and published all or
    nothing like ``run_publish``'s, its .debs' check results then recorded here (the
    promotion asks for them), an upload in the workdir's ``incoming/`` then removed. A
    rejected upload changes nothing."""
    log = work.fresh_log(t.logs, "accept")
    codename = repository.codename(t.distribution.name, t.release.name, "staging")
    the_upload = upload.verify(directory)
    for path, said in zip(the_upload.changes, the_upload.distributions, strict=True):
        if said != t.distribution.name:
            raise upload.UploadRejected(
                f"{path.name} is for distribution {said!r}, not {t.distribution.name}: "
                f"refusing it for {codename}", hint="upload it for its own distribution")
    if the_upload.deferred:
        _install_test_here(config, work, t, the_upload, log)
    paths = repository.Paths(work.repo)
    with repository.locked(paths, lock_timeout), repository.incoming(paths) as into:
        items = [repository.stage(path, into) for path in the_upload.files]
        for it in items:  # the copies are what was verified, whatever happens to the upload
            if it.kind == "deb" and it.sha256 not in the_upload.results:
                raise upload.UploadRejected(f"{it.path.name} changed while it was verified",
                                            hint="upload again")
        with signing_key(config, work, log) as key:
            current = paths.current()
            held = repository.listing(current, codename, log) if current else {}
            steps = repository.plan(items, held, current or work.repo, codename)
            todo = [s for s in steps if s.action == "include"]
            said_sources = ", ".join(f"{s} {v}" for s, v in the_upload.sources)
            if todo:
                say(f"accept: {len(todo)} of {len(items)} files from {uploader} into "
                    f"{codename}")

                def act(base: Path) -> None:
                    repository.include(base, codename, todo, key, log)
                    _expected(base, codename, items, log)

                generation = _change(config, work, key, log, codename, act, {
                    "Action": "accept", "Codename": codename, "Uploader": uploader,
                    "Upload": said_sources,
                    "Packages": "\n " + "\n ".join(
                        f"{s.item.package} {s.item.kind} {s.item.version}"
                        + (f" (was {s.replaces})" if s.replaces else "") for s in todo),
                    "Signed-By": key.fingerprint})
    for check in check_records.CHECKS:
        on_worker = [d for d in the_upload.debs
                     if not (check == upload.DEFERRABLE and d in the_upload.deferred)]
        check_records.record(work.checks, on_worker, check, passed=True,
                             detail=f"on worker {uploader}")
    if directory.resolve().parent == work.incoming.resolve():  # processed: gone, as
        shutil.rmtree(directory)                                # processincoming does
    if not todo:
        return Outcome("accept", codename, f"accept: up to date: {codename} holds all "
                                           f"{len(items)} files of {said_sources}",
                       changed=False)
    return Outcome("accept", codename, f"accept: {said_sources} from {uploader}: {len(todo)} "
                                       f"files into {codename} (generation {generation})")


def _install_test_here(config: Config, work: Workdir, t: Target, the_upload: upload.Upload,
                       log: Path) -> None:
    """The install test an unprivileged worker left to the publisher, on the upload's
    own .debs, in a clean booted chroot here (as ``venvdeb check`` runs it), recorded
    in this workdir's ledger; ``InstallTestFailed`` (nothing published) if it fails."""
    projects = [(s, v) for s, v in the_upload.sources if s in config.projects]
    if len(projects) != 1:
        raise upload.UploadRejected(
            f"the upload's install test was left to the publisher, but its sources "
            f"({', '.join(s for s, _ in the_upload.sources)}) hold "
            f"{len(projects)} projects of {config.path}, not one",
            hint="upload one project's build (with its requirements package)")
    [(name, version)] = projects
    project = project_on(config, name, t)
    own = {p.name for p in project.packages} | {project.venv_package(t.release.name)}
    reqdebs = [d for d in the_upload.debs if DebFile(str(d)).debcontrol()["Package"] not in own]
    if len(reqdebs) != 1:
        raise upload.UploadRejected(
            f"the upload's install test was left to the publisher, but it holds "
            f"{len(reqdebs)} .debs besides {name}'s, not the one requirements package",
            hint="upload with 'venvdeb upload', which adds it")
    control = DebFile(str(reqdebs[0])).debcontrol()
    the_plan = install_test.plan(project, t.release.name, version,
                                 (str(control["Package"]), str(control["Version"])))

    def test() -> list[str]:
        say(f"accept: install test of {name} {version} here (the worker left it to the "
            f"publisher)")
        with candidates.candidate_chroot(t.distribution, the_upload.debs, log) as box:
            return install_test.run(the_plan, box)

    gate.install(work.checks, the_upload.debs, test)


def audit_gate(config: Config, work: Workdir, t: Target, allow_stale_audit: str | None) -> str:
    """With an advisory source configured, the release's pins must carry no open
    advisory (waivers applied) to be promoted; the audit is saved like 'venvdeb
    audit' saves it. The source unavailable: refused, unless ``allow_stale_audit``
    names the date of the last saved audit, which found nothing open."""
    source = config.audit.advisories
    if not config.audit.gated:
        return "promote: no advisory source configured ([audit] advisories): not gated"
    out = audit.report_dir(work, t)
    try:
        report = audit.audit(config, work, t, (), source, package_name(t.release.name))
    except AdvisoriesUnavailable as exc:
        last = audit.last_clean_day(out)
        if allow_stale_audit is not None and allow_stale_audit == last:
            return (f"promote: {exc.message}: relying on the audit of {last} "
                    f"(--allow-stale-audit), which found nothing open")
        raise PublishError(
            f"promote: {exc.message}: cannot tell whether {t.release.name} carries known "
            f"advisories", hint=(f"bring the advisory source back (the export, or the "
                                f"network to the online service), or rely on the last audit "
                                f"with --allow-stale-audit {last} (it found nothing open)"
                                if last else "bring the advisory source back (the export, or "
                                             "the network to the online service) and run "
                                             "'venvdeb audit' (no earlier audit found nothing "
                                             "open)")) from None
    saved = audit.save(report, out)
    for note in report.notes():
        say(note)
    if report.open:
        raise AdvisoriesFound(
            report.refusal("promote refused"),
            hint=f"upgrade the pins, or waive each advisory for {t.release.name} with a "
                 f"reason and an expiry date ([[audit.waivers]] in {config.path}); the "
                 f"report: {saved}")
    return f"promote: {report.summary()}"


def license_gate(config: Config, work: Workdir, t: Target) -> str:
    """With ``[audit] blocked_licenses`` set, no pin of the release may declare one of
    them (venvdeb.qa.licenses says how an expression is read); the report is saved
    like 'venvdeb licenses' saves it."""
    if not config.audit.blocked_licenses:
        return "promote: no blocked licenses configured ([audit] blocked_licenses): not gated"
    report = licenses.licenses(config, work, t, (), package_name(t.release.name))
    saved = licenses.save(report, audit.report_dir(work, t))
    for note in report.notes():
        say(note)
    if report.missing:
        raise PublishError(
            f"promote: {len(report.missing)} pins of {report.subject} have no wheel in this "
            f"workdir's wheel repository: cannot tell their licenses",
            hint=f"run 'venvdeb wheels --release {t.release.name} --dist "
                 f"{t.distribution.name}' here first")
    if report.blocked:
        raise LicensesBlocked(
            report.refusal("promote refused"),
            hint=f"pin another version or drop the dependency, or take the license off "
                 f"[audit] blocked_licenses in {config.path}; the report: {saved}")
    return f"promote: {report.summary()}"


def run_promote(config: Config, work: Workdir, t: Target, *,
                lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                allow_stale_audit: str | None = None) -> Outcome:
    say(audit_gate(config, work, t, allow_stale_audit))
    say(license_gate(config, work, t))
    log = work.fresh_log(t.logs, "promote")
    source = repository.codename(t.distribution.name, t.release.name, "staging")
    target = repository.codename(t.distribution.name, t.release.name, "production")
    paths = repository.Paths(work.repo)
    with repository.locked(paths, lock_timeout), signing_key(config, work, log) as key:
        current = paths.current()
        staged = repository.listing(current, source, log) if current else {}
        if not staged:
            raise PublishError(f"{source} is empty: nothing to promote",
                               hint=f"run 'venvdeb publish --release {t.release.name}' first")
        assert current is not None
        held = repository.listing(current, target, log)
        for entry in staged.values():
            if entry.kind == "deb" and not all(
                    check_records.result(work.checks, current / entry.filekey, c) == "passed"
                    for c in check_records.CHECKS):
                raise PublishError(f"{entry.package} {entry.version} in {source} has no passing "
                                   f"lintian and install test recorded in this workdir",
                                   hint="check it again before promoting")
        pairs = sorted({(e.package, e.version) for k, e in staged.items()
                        if k not in held or Version(held[k].version) < Version(e.version)})
        if not pairs:
            return Outcome("promote", target,
                           f"promote: up to date: {target} holds what {source} holds",
                           changed=False)
        from_generation = next((h["Generation"] for h in reversed(repository.read_history(current))
                                if h.get("Codename") == source), "unknown")
        say(f"promote: {len(pairs)} packages from {source} to {target}")

        def act(base: Path) -> None:
            repository.copy(base, target, source, pairs, key, log)
            after = repository.listing(base, target, log)
            for package, version in pairs:
                if not any(e.package == package and e.version == version for e in after.values()):
                    raise PublishError(f"{package} {version} did not reach {target}", log=log)

        generation = _change(config, work, key, log, target, act, {
            "Action": "promote", "Codename": target, "From": source,
            "From-Generation": from_generation,
            "Packages": "\n " + "\n ".join(f"{p} {v}" for p, v in pairs),
            "Signed-By": key.fingerprint})
    return Outcome("promote", target, f"promote: {len(pairs)} packages from {source} to {target} "
                                      f"(generation {generation})")


def operator_lines(config: Config, work: Workdir, t: Target, stage: Stage,
                   packages: Sequence[str]) -> list[str]:
    """What an operator runs on a node to install from the repository."""
    base = url(config, work)
    codename = repository.codename(t.distribution.name, t.release.name, stage)
    fetch = http.keyring_command(base, NODE_KEYRING)
    stanza = repository.sources_entry(base, codename, NODE_KEYRING)
    return [fetch, "cat > /etc/apt/sources.list.d/venvdeb.sources <<'EOF'",
            *stanza.rstrip("\n").splitlines(), "EOF",
            f"apt-get update && apt-get install {' '.join(packages)}"]
