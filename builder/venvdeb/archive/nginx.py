"""``venvdeb serve start|stop|status``: venvdeb's own nginx serving a workdir's
repository (its configuration: venvdeb.archive.http).

Its own ``-c`` configuration, pid file, logs and temporary files under
``<workdir>/http``: it needs no system nginx (Debian's package starts one on
port 80 where an init system runs; this one never touches it), and stop stops
only the process whose pid file and command line are ours.
"""
from __future__ import annotations

import grp
import os
import pwd
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from venvdeb.archive import http
from venvdeb.core import runner
from venvdeb.core.errors import ConfigError, ServeError
from venvdeb.core.files import write_if_changed

NGINX = "/usr/sbin/nginx"


def _account(name: str) -> http.Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ServeError(f"there is no user {name} for nginx's worker processes",
                         hint="install Debian's nginx package (bin/setup does), which "
                              "uses that user") from None
    return http.Account(name, entry.pw_uid, frozenset(os.getgrouplist(name, entry.pw_gid)))


def _node(path: Path) -> http.Node:
    st = path.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = ""
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = ""
    return http.Node(path, st.st_mode, st.st_uid, st.st_gid, owner, group)


def access(instance: http.Instance) -> http.Refusal | None:
    """Whether www-data can reach the repository (or, none published yet, the
    workdir), its served directories and the keyring."""
    if not instance.repo.is_symlink():
        chain = (*reversed(instance.workdir.parents), instance.workdir)
        return http.refused([_node(p) for p in chain], [], _account(http.WEB_USER))
    generation = instance.repo.resolve()
    served = [generation, *(generation / name for name in (*http.SERVED_DIRECTORIES,
                                                             *http.SERVED_FILES))]
    return http.refused([_node(p) for p in reversed(generation.parents)],
                        [_node(p) for p in served if p.exists()], _account(http.WEB_USER))


def _pid(instance: http.Instance) -> int | None:
    """The pid of our running nginx: the pid file's, if that process runs our config
    (nginx's master sets its title to "nginx: master process" and its argv)."""
    try:
        pid = int(instance.pid_file.read_text().strip())
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return None
    return pid if f" -c {instance.conf} ".encode() in title + b" " else None


def _nginx(instance: http.Instance, *args: str, what: str) -> runner.Result:
    if not Path(NGINX).exists():
        raise ServeError(f"{NGINX} is not installed", hint="run bin/setup (it installs "
                                                           "Debian's nginx package)")
    argv = [NGINX, "-p", f"{instance.home}/", "-e", str(instance.error_log),
            "-c", str(instance.conf), *args]
    result = runner.run(argv, log=instance.log, what=what, check=False)
    if result.returncode == 0:
        return result
    if "Address already in use" in result.output:
        raise ServeError(f"{what}: the address is in use by another program (a system nginx "
                         f"on port 80, another service?)", hint="pick a free port: --listen "
                                                                "IP:PORT", log=instance.log)
    last = [line for line in result.output.splitlines() if line.strip()]
    raise ServeError(f"{what} failed" + (f": {last[-1].strip()}" if last else ""),
                     log=instance.log)


def probe(url: str, timeout: float = 2.0) -> int | str:
    """The HTTP status of a HEAD request for ``url``, or why there was no answer."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError) as exc:
        return str(getattr(exc, "reason", exc))


def _lines(instance: http.Instance, at: http.Listen, state: str,
           configured: str | None) -> list[str]:
    url = at.node_url(socket.getfqdn() if at.every_address else "")
    lines = [f"serve: {state}: nginx serving {instance.repo} at {url}/ "
             f"(logs: {instance.error_log}, {instance.access_log})"]
    if configured != url:
        lines.append(f"serve: nodes use {url}: set url = \"{url}\" under [repository] in "
                     f"pipeline.toml (now: {configured or 'unset, so file://'}): the node lines "
                     f"then name it, and the next 'venvdeb publish' writes it into "
                     f"sources/*.sources (nothing else need change)")
    return lines


def start(instance: http.Instance, at: http.Listen, configured: str | None) -> list[str]:
    """Write the configuration, check it (nginx -t), then start nginx or, running,
    reload it if the configuration changed; wait until it answers."""
    instance.home.mkdir(parents=True, exist_ok=True)
    instance.temp.mkdir(exist_ok=True)
    refusal = access(instance)
    if refusal is not None:
        raise ServeError(refusal.message, hint=refusal.hint)
    changed = write_if_changed(instance.conf, http.nginx_conf(instance, at))
    write_if_changed(instance.listen_file, at.directive + "\n")
    pid = _pid(instance)
    if pid is not None and not changed:
        state = f"already running (pid {pid})"
    else:
        _nginx(instance, "-t", what="nginx -t")
        if pid is None:
            _nginx(instance, what="nginx")
            state = "started"
        else:
            _nginx(instance, "-s", "reload", what="nginx -s reload")
            state = f"reloaded (pid {pid})"
    answer = _wait(at.local_url + "/")
    if isinstance(answer, str):
        raise ServeError(f"nginx started but {at.local_url}/ does not answer ({answer})",
                         log=instance.error_log)
    return _lines(instance, at, state, configured)


def _wait(url: str, timeout: float = 10.0) -> int | str:
    """The first HTTP answer of ``url`` (404 too: nothing published yet), or why none."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe(url)
        if isinstance(answer, int) or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def stop(instance: http.Instance, timeout: float = 10.0) -> list[str]:
    pid = _pid(instance)
    if pid is None:
        return [f"serve: not running (no nginx of {instance.conf})"]
    _nginx(instance, "-s", "quit", what="nginx -s quit")
    deadline = time.monotonic() + timeout
    while _pid(instance) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid(instance) == pid:
        raise ServeError(f"nginx (pid {pid}) did not stop within {timeout:.0f} s",
                         hint=f"kill {pid}", log=instance.error_log)
    return [f"serve: stopped nginx (pid {pid})"]


def last_listen(instance: http.Instance) -> http.Listen | None:
    try:
        return http.listen(instance.listen_file.read_text().strip())
    except (OSError, ConfigError):
        return None


def status(instance: http.Instance, at: http.Listen, configured: str | None) -> list[str]:
    pid = _pid(instance)
    served = os.readlink(instance.repo) if instance.repo.is_symlink() else "nothing published yet"
    if pid is None:
        return [f"serve: not running (start it: venvdeb serve start --listen {at.directive})"]
    answer = probe(at.local_url + "/dists/")
    state = f"running (pid {pid}), " + (
        "answering" if answer == 200 else f"NOT answering ({answer})" if isinstance(answer, str)
        else f"answering HTTP {answer} for /dists/")
    return [*_lines(instance, at, state, configured), f"serve: repo -> {served}"]
