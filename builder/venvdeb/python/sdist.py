"""Build one sdist into a wheel, on the host, in pip's isolated build env.

Declared Debian build dependencies are checked first (one line with the exact
``apt-get install`` to run); a failed build is diagnosed from its log.
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from venvdeb.core import runner
from venvdeb.core.errors import BuildDependencyMissing, SdistBuildFailed

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


def missing_debian_packages(packages: tuple[str, ...], log: Path) -> tuple[str, ...]:
    if not packages:
        return ()
    result = runner.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
                         log=log, check=False)
    installed = {line.split()[0] for line in result.output.splitlines()
                 if line.endswith(" installed")}
    return tuple(p for p in packages if p not in installed)


def diagnose(output: str) -> tuple[str, ...]:
    found = []
    for pattern, package in MISSING_HINTS:
        if pattern.search(output) and package not in found:
            found.append(package)
    return tuple(found)


def build_wheel(
    *,
    name: str,
    version: str,
    sdist: Path,
    out_dir: Path,
    debian_build_deps: tuple[str, ...],
    index_url: str,
    build_constraints: Path,
    log: Path,
    source_date_epoch: int,
) -> Path:
    """Return the path of the wheel built from ``sdist`` into ``out_dir``."""
    missing = missing_debian_packages(debian_build_deps, log)
    if missing:
        raise BuildDependencyMissing(
            f"{name} {version} is built from its sdist and needs Debian packages that are "
            f"not installed: {' '.join(missing)}",
            hint=f"run: apt-get install {' '.join(missing)}", log=log)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"venvdeb-{canonicalize_name(name)}-") as tmp:
        argv = [sys.executable, "-m", "venvdeb.python.pip_run", "wheel", "--no-deps", "--no-cache-dir",
                "--wheel-dir", tmp, "--index-url", index_url,
                "--build-constraint", str(build_constraints), str(sdist)]
        env = runner.clean_environment({"SOURCE_DATE_EPOCH": str(source_date_epoch)})
        result = runner.run(argv, log=log, env=env, check=False)
        if result.returncode != 0:
            packages = [p for p in diagnose(result.output)
                        if p not in debian_build_deps or p in missing]
            if packages:
                hint = (f"it looks like it needs Debian package(s) {' '.join(packages)}: "
                        f"add them to [sdist_build_dependencies] \"{name}\" in the config "
                        f"and run: apt-get install {' '.join(packages)}")
            else:
                hint = "read the log for the compiler or setup.py error"
            raise SdistBuildFailed(f"building a wheel from the sdist of {name} {version} failed",
                                   hint=hint, log=log)
        wheels = sorted(Path(tmp).glob("*.whl"))
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
        dest = out_dir / wheels[0].name
        shutil.move(str(wheels[0]), dest)
        return dest
