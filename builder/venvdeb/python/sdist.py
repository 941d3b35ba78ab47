"""Build one sdist into a wheel, confined: in a clean chroot of the target
distribution, as an unprivileged user in a user namespace, with no network.

The chroot (``chroot.chroot_packages``: the target's python3, pip, compiler and every
Debian package of ``[sdist_build_dependencies]``) is a tree made once by
``venvdeb.core.images`` and entered read-only by every build at once
(``venvdeb.core.mounts``): nothing of the build host's /usr, /etc or /root is in
sight. Each build works in a scratch directory of its own, bound on
``/build``; it runs in a user namespace as ``chroot.BUILDER`` (not root there: root
there is a subordinate id of the host's root), a uid no other step uses. The
sdist and the build lock's wheels are copied in, a venv of the
target interpreter gets the build lock installed with ``--require-hashes`` from
those wheels only, the backend is asked for its dynamic build requirements
(upstream code: confined too), which must be in the build lock, and pip builds
the wheel with ``--no-build-isolation`` (pip does not hash-check what it puts
into an isolated build environment). A failed build is diagnosed from its log.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyproject_hooks
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from venvdeb.core import runner, sandbox
from venvdeb.core.errors import HostError, SdistBuildFailed
from venvdeb.python import chroot
from venvdeb.python.build_lock import BuildSystem
from venvdeb.python.lock import LockEntry

#: Headers, pkg-config modules and tools that sdists commonly miss, and the
#: Debian package providing each.
MISSING_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), package) for pattern, package in (
        (r"fatal error: (?:ldap|lber)\.h", "libldap2-dev"),
        (r"fatal error: sasl/sasl\.h", "libsasl2-dev"),
        (r"fatal error: (?:gssapi/gssapi\.h|krb5\.h)|krb5-config: (?:not found|No such file)",
         "libkrb5-dev"),
        (r"fatal error: libvirt/|Package libvirt was not found", "libvirt-dev"),
        (r"fatal error: systemd/|Package '?libsystemd'? (?:was )?not found", "libsystemd-dev"),
        (r"fatal error: libpq-fe\.h|pg_config executable not found", "libpq-dev"),
        (r"fatal error: Python\.h", "python3-dev"),
        (r"fatal error: ffi\.h", "libffi-dev"),
        (r"fatal error: openssl/", "libssl-dev"),
        (r"fatal error: libxml/", "libxml2-dev"),
        (r"fatal error: yaml\.h", "libyaml-dev"),
        (r"pkg-config: (?:not found|command not found)|No such file or directory: 'pkg-config'",
         "pkg-config"),
        (r"(?:gcc|cc|x86_64-linux-gnu-gcc)[^\n]*(?:not found|No such file or directory)",
         "build-essential"),
    ))


class UnlockedBuildRequirements(SdistBuildFailed):
    """Build backends asked for requirements the build lock does not hold (by sdist file)."""

    def __init__(self, message: str, *, wanted: Mapping[str, tuple[str, ...]],
                 hint: str | None = None, log: Path | None = None) -> None:
        super().__init__(message, hint=hint, log=log)
        self.wanted = dict(wanted)


def diagnose(output: str) -> tuple[str, ...]:
    found = []
    for pattern, package in MISSING_HINTS:
        if pattern.search(output) and package not in found:
            found.append(package)
    return tuple(found)


def unlocked(requirements: Sequence[str], locked: Sequence[LockEntry],
             python_version: str) -> tuple[str, ...]:
    """Pure: the requirements a build asks for that the build lock does not satisfy."""
    by_name = {e.name: e for e in locked}
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(python_version=python_version, python_full_version=f"{python_version}.0")
    missing = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(text)
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        entry = by_name.get(canonicalize_name(req.name))
        if entry is None or not req.specifier.contains(entry.version, prereleases=True):
            missing.append(text)
    return tuple(missing)


#: The build lock installed into /build/venv, archived once per build lock
#: (``build_venv``): every build of it unpacks this instead of installing it again.
VENV_ARCHIVE = "venv.tar"


def _lock_file(scratch: Path, build_lock: Sequence[LockEntry],
               build_wheels: Mapping[NormalizedName, Path]) -> list[str]:
    """Copy the build lock's wheels into ``scratch``/wheels and write its
    ``build-lock.txt`` with every hash; return its lines."""
    lines = []
    for entry in build_lock:
        wheel = build_wheels[entry.name]
        shutil.copyfile(wheel, scratch / "wheels" / wheel.name)
        lines.append(f"{entry.requirement} "
                     + " ".join(f"--hash=sha256:{h}" for h in sorted(entry.hashes)) + "\n")
    (scratch / "build-lock.txt").write_text("".join(lines))
    return lines


def build_venv(*, build_lock: Sequence[LockEntry], build_wheels: Mapping[NormalizedName, Path],
               root: Path, python: str, log: Path, dest: Path) -> Path:
    """Install the build lock once into a venv at /build/venv, in the chroot as the
    builder with the network cut (hash-checked wheels only: installing a wheel runs
    none of its code), and archive it into ``dest`` for every build of that lock to
    unpack: installing it again in each build took 93 s of a full release's 398 s of
    sdist builds (bench/run --from-scratch)."""
    if os.geteuid() != 0:
        raise HostError("installing the build lock enters a chroot: that needs root")
    pip = chroot.target_pip(root)
    inside = chroot.INSIDE
    who = chroot.builder()
    with sandbox.scratch("build-venv", owner=who) as scratch:
        for sub in ("home", "tmp", "wheels"):
            (scratch / sub).mkdir()
        lines = _lock_file(scratch, build_lock, build_wheels)
        sandbox.give(scratch, who)
        env = chroot.tree_environment({"HOME": str(inside / "home"), "TMPDIR": str(inside / "tmp")})
        steps: list[tuple[list[str], str]] = [
            ([python, "-m", "venv", "--without-pip", str(inside / "venv")], "creating the venv")]
        if lines:
            steps.append(([str(inside / "venv" / "bin" / "python"), pip, "install", "--no-index",
                           "--require-hashes", "--no-deps", "--no-cache-dir", "--find-links",
                           str(inside / "wheels"), "-r", str(inside / "build-lock.txt")],
                          "installing the build lock"))
        steps.append((["tar", "-cf", str(inside / VENV_ARCHIVE), "-C", str(inside), "venv"],
                      "archiving the venv"))
        for argv, what in steps:
            result = runner.run(chroot.wrap(root, scratch, argv, cwd=str(inside)), log=log,
                                env=env, check=False, what=what)
            if result.returncode != 0:
                raise SdistBuildFailed(f"the venv of the build lock could not be made ({what})",
                                       hint="read the log", log=log)
        archive = scratch / VENV_ARCHIVE
        if archive.is_symlink() or not archive.is_file():
            raise SdistBuildFailed(f"the venv of the build lock left {VENV_ARCHIVE} as a link "
                                   f"or a special file", log=log)
        shutil.copyfile(archive, dest, follow_symlinks=False)
    return dest


def build_wheel(
    *,
    name: str,
    version: str,
    sdist: Path,
    out_dir: Path,
    debian_build_deps: tuple[str, ...],
    build_system: BuildSystem,
    build_lock: Sequence[LockEntry],
    venv_archive: Path,
    root: Path,
    python: str,
    python_version: str,
    log: Path,
    source_date_epoch: int,
) -> Path:
    """Return the path of the wheel built from ``sdist`` into ``out_dir``.

    ``root``: the build chroot (``python``, the target interpreter, is a path in
    it); ``venv_archive``, its build lock installed into a venv (``build_venv``),
    unpacked as the build's venv; ``debian_build_deps``, what the config declares
    for it (for the hint of a failed build).
    """
    if os.geteuid() != 0:
        raise HostError(f"building the sdist of {name} {version} enters a chroot: that needs root",
                        hint="run venvdeb as root (it drops to the sandbox user for the "
                             "build); a buildbot worker running as its own user needs the "
                             "release's wheels made already (buildbot-master/README.md, "
                             "\"Workers as their own unprivileged users\")")
    out_dir.mkdir(parents=True, exist_ok=True)
    pip = chroot.target_pip(root)
    inside = chroot.INSIDE
    who = chroot.builder()  # the builder, seen from here
    with sandbox.scratch(f"sdist-{canonicalize_name(name)}", owner=who) as scratch:
        for sub in ("home", "tmp", "src", "out"):
            (scratch / sub).mkdir()
        shutil.copyfile(sdist, scratch / sdist.name)
        shutil.copyfile(venv_archive, scratch / VENV_ARCHIVE, follow_symlinks=False)
        sandbox.give(scratch, who)
        env = chroot.tree_environment({
            "SOURCE_DATE_EPOCH": str(source_date_epoch),
            "HOME": str(inside / "home"), "TMPDIR": str(inside / "tmp")})
        for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(key, None)
        venv_python = str(inside / "venv" / "bin" / "python")

        def confined(argv: Sequence[str], what: str, cwd: str = str(inside),
                     extra: Mapping[str, str] | None = None) -> runner.Result:
            return runner.run(chroot.wrap(root, scratch, argv, cwd=cwd), log=log,
                              env={**env, **(extra or {})}, check=False, what=what)

        def failed(what: str, result: runner.Result) -> SdistBuildFailed:
            packages = [p for p in diagnose(result.output) if p not in debian_build_deps]
            if packages:
                hint = (f"it looks like it needs Debian package(s) {' '.join(packages)}: "
                        f"add them to [sdist_build_dependencies] \"{name}\" in the config "
                        f"(the build chroot is made again with them on the next run)")
            else:
                hint = "read the log for the compiler or setup.py error"
            return SdistBuildFailed(f"building a wheel from the sdist of {name} {version} failed "
                                    f"({what})", hint=hint, log=log)

        steps: list[tuple[list[str], str]] = [
            (["tar", "-xf", str(inside / VENV_ARCHIVE), "-C", str(inside), "--no-same-owner"],
             "unpacking its venv with the build lock installed"),
            (["tar", "-xf", str(inside / sdist.name), "-C", str(inside / "src"),
              "--no-same-owner", "--no-same-permissions"]
             if not sdist.name.endswith(".zip") else
             [python, "-m", "zipfile", "-e", str(inside / sdist.name), str(inside / "src")],
             "unpacking it"),
        ]
        for argv, what in steps:
            result = confined(argv, what)
            if result.returncode != 0:
                raise failed(what, result)
        trees = [p for p in (scratch / "src").iterdir() if p.is_dir() and not p.is_symlink()]
        if len(trees) != 1:
            raise SdistBuildFailed(f"the sdist {sdist.name} of {name} {version} does not unpack "
                                   f"into one directory", log=log)
        tree = inside / "src" / trees[0].name

        def hook_runner(cmd: Sequence[str], cwd: str | None = None,
                        extra_environ: Mapping[str, str] | None = None) -> None:
            # pyproject_hooks' script and control directory are root's, on the host:
            # copied in for the sandbox user, its answer copied back out (a regular
            # file only, never through a link)
            script, control = Path(cmd[1]), Path(cmd[-1])
            # a new directory each call (mkdtemp follows no link): nothing the sandbox
            # user left in its scratch is written through by root
            hook = Path(tempfile.mkdtemp(prefix="hook-", dir=scratch))
            shutil.copyfile(script, hook / script.name)
            shutil.copyfile(control / "input.json", hook / "input.json")
            sandbox.give(hook, who)
            what = "asking its build backend for its requirements"
            result = confined([cmd[0], str(inside / hook.name / script.name), *cmd[2:-1],
                               str(inside / hook.name)], what, cwd or str(tree), extra_environ)
            if result.returncode != 0:
                raise failed(what, result)
            try:
                answer = sandbox.read_output(hook / "output.json",
                                             f"the build backend of {name} {version}")
            except sandbox.SandboxOutputError as exc:
                raise SdistBuildFailed(str(exc), log=log) from None
            (control / "output.json").write_text(answer, encoding="utf-8")

        hooks = pyproject_hooks.BuildBackendHookCaller(
            str(tree), build_system.backend, list(build_system.backend_path) or None,
            runner=hook_runner, python_executable=venv_python)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                dynamic = hooks.get_requires_for_build_wheel()
            passed = [w for w in caught if issubclass(w.category, UserWarning)]
            if passed:  # the backend's warnings, passed back by pyproject_hooks: to the log
                with log.open("a", encoding="utf-8") as f:
                    f.writelines(f"backend warning: {w.message}\n" for w in passed)
        except pyproject_hooks.BackendUnavailable as exc:
            raise SdistBuildFailed(f"the build backend {build_system.backend!r} of {name} "
                                   f"{version} is not in its build lock: {exc}",
                                   hint="its pyproject.toml names a backend it does not require",
                                   log=log) from None
        lacking = unlocked(list(dynamic), build_lock, python_version)
        if lacking:
            raise UnlockedBuildRequirements(
                f"the sdist of {name} {version} asks its build backend for {', '.join(lacking)}, "
                f"which the build lock does not hold",
                hint="the build lock takes what a backend asks for on the next run; if this "
                     "persists, the index lacks a wheel of it", log=log,
                wanted={sdist.name: lacking})
        result = confined([venv_python, pip, "wheel", "-v", "--no-build-isolation", "--no-deps",
                           "--no-index", "--no-cache-dir", "--wheel-dir", str(inside / "out"),
                           str(tree)], "pip wheel")
        if result.returncode != 0:
            raise failed("pip wheel", result)
        wheels = sorted((scratch / "out").glob("*.whl"))
        if len(wheels) != 1:
            raise SdistBuildFailed(f"building {name} {version} produced {len(wheels)} wheels, "
                                   f"expected one", log=log)
        try:
            wname, wversion, _, _ = parse_wheel_filename(wheels[0].name)
        except InvalidWheelFilename as exc:
            raise SdistBuildFailed(f"{name} {version} built a badly named wheel: {exc}",
                                   log=log) from None
        if wname != canonicalize_name(name) or wversion != Version(version):
            raise SdistBuildFailed(f"the sdist of {name} {version} built {wheels[0].name}",
                                   hint="the sdist does not match its name or version", log=log)
        if wheels[0].is_symlink() or not wheels[0].is_file():
            raise SdistBuildFailed(f"the sdist of {name} {version} left {wheels[0].name} as a "
                                   f"link or a special file", log=log)
        dest = out_dir / wheels[0].name
        partial = dest.with_name(dest.name + ".part")
        shutil.copyfile(wheels[0], partial, follow_symlinks=False)
        os.chmod(partial, 0o644)
        partial.replace(dest)
        return dest
