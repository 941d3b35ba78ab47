"""A reader for PEP 503 simple indexes (https:// or file://) and target tags."""
from __future__ import annotations

import hashlib
import http.client
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from packaging import tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from venvdeb.core.config import Distribution
from venvdeb.core.errors import HashMismatch, IndexError_
from venvdeb.core.files import write_atomic

_USER_AGENT = "venvdeb (+https://pypi.org/project/venvdeb/)"
#: a file name from an index page that may become a path: no separator, no leading dot
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+!-]*")


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    requires_python: str | None
    yanked: bool


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def parse_project_page(html: str, page_url: str, project: str) -> tuple[IndexFile, ...]:
    """The wheels and sdists of ``project`` a PEP 503 page lists. A file name that is
    not a plain base name (``../``, ``/``, a dot file) is refused: it would become a
    path; names of other formats or other projects are left out."""
    parser = _Anchors()
    parser.feed(html)
    files = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(page_url, href)
        path, _, fragment = url.partition("#")
        filename = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        if not _is_project_file(filename, project, page_url):
            continue
        sha256 = None
        if fragment.startswith("sha256="):
            sha256 = fragment[len("sha256="):]
        files.append(IndexFile(filename, path, sha256, attrs.get("data-requires-python"),
                               "data-yanked" in attrs))
    return tuple(files)


def _is_project_file(filename: str, project: str, page_url: str) -> bool:
    """True for a wheel or sdist of ``project``; raises for a name that is not a plain
    base name, whatever its format."""
    if not filename:  # a link to a directory, not a file
        return False
    if not _PLAIN_NAME.fullmatch(filename):
        raise IndexError_(
            f"the index page {page_url} lists a file named {filename!r}, which is not a plain "
            f"file name: refused", hint="the index is broken or hostile: check the release's "
            "index_url")
    try:
        if filename.endswith(".whl"):
            name = parse_wheel_filename(filename)[0]
        elif filename.endswith((".tar.gz", ".zip")):
            name = parse_sdist_filename(filename)[0]
        else:
            return False
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return False
    return name == canonicalize_name(project)


#: One kept-alive connection per thread and host: a new TLS connection per request
#: made the index pages of a full release (570, 68 MB) take 27 s at 8 at once, 1.9 s
#: kept alive (bench/run --from-scratch says how long the wheels stage read them).
_CONNECTIONS = threading.local()
_REDIRECTS = 5
#: A kept-alive connection the server closed meanwhile fails on its next request:
#: asked again once on a new connection.
_STALE = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError,
          BrokenPipeError)


def _open(url: str, timeout: float = 60.0) -> bytes:
    if url.startswith("file://"):
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
        if path.is_dir():
            path = path / "index.html"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise urllib.error.HTTPError(url, 404, "not found", None, None) from None  # type: ignore[arg-type]
    last: Exception | None = None
    for attempt in range(4):
        try:
            return _get(url, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise
            last = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException,
                ssl.SSLError) as exc:
            last = exc
        time.sleep(1 + attempt * 2)
    assert last is not None
    raise last


def _get(url: str, timeout: float) -> bytes:
    """``url``'s body over this thread's kept-alive connection to its host (urllib,
    which follows the environment's proxy settings, where one is set)."""
    headers = {"User-Agent": _USER_AGENT, "Accept": "text/html"}
    for _ in range(_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise urllib.error.URLError(f"not an http(s) URL: {url}")
        if urllib.request.getproxies().get(parts.scheme) \
                and not urllib.request.proxy_bypass(parts.hostname):
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return bytes(response.read())
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        status, reason, location, body = _exchange(parts.scheme, parts.netloc, target,
                                                   headers, timeout)
        if status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            continue
        if status != 200:
            raise urllib.error.HTTPError(url, status, reason, None, None)  # type: ignore[arg-type]
        return body
    raise urllib.error.URLError(f"more than {_REDIRECTS} redirects from {url}")


def _exchange(scheme: str, netloc: str, target: str, headers: dict[str, str],
              timeout: float) -> tuple[int, str, str | None, bytes]:
    pool: dict[tuple[str, str], http.client.HTTPConnection] = \
        _CONNECTIONS.__dict__.setdefault("pool", {})
    for fresh in (False, True):
        conn = pool.get((scheme, netloc))
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = (http.client.HTTPSConnection(netloc, timeout=timeout,
                                                context=ssl.create_default_context())
                    if scheme == "https" else http.client.HTTPConnection(netloc, timeout=timeout))
            pool[(scheme, netloc)] = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except _STALE:
            conn.close()
            pool.pop((scheme, netloc), None)
            if fresh:
                raise
            continue
        except BaseException:
            conn.close()
            pool.pop((scheme, netloc), None)
            raise
        if response.will_close:
            conn.close()
            pool.pop((scheme, netloc), None)
        return response.status, response.reason, response.getheader("Location"), body
    raise AssertionError("unreachable")


def project_files(index_url: str, name: str) -> tuple[IndexFile, ...]:
    page = f"{index_url.rstrip('/')}/{canonicalize_name(name)}/"
    try:
        html = _open(page).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise IndexError_(f"the package index {index_url} has no project {name}",
                              hint="check the pin's name or the release's index_url") from None
        raise IndexError_(f"reading {page} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise IndexError_(f"cannot reach the package index at {page}: {exc}",
                          hint="check the network or the release's index_url") from None
    return parse_project_page(html, page, name)


def download(url: str, dest: Path, sha256s: frozenset[str], what: str) -> str:
    """Fetch ``url`` to ``dest`` atomically; its sha256 must be one of ``sha256s``."""
    try:
        data = _open(url, timeout=300)
    except (urllib.error.URLError, OSError) as exc:
        raise IndexError_(f"downloading {what} from {url} failed: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest not in sha256s:
        raise HashMismatch(
            f"{what}: downloaded {dest.name} has sha256 {digest}, which the lock does not list",
            hint="the index serves other content than when the lock was made: run 'venvdeb lock' "
                 "again, or check the index")
    write_atomic(dest, data)
    return digest


def target_tags(distribution: Distribution) -> tuple[tags.Tag, ...]:
    """Wheel tags the distribution's interpreter accepts, best first."""
    major, minor = (int(x) for x in distribution.python_version.split("."))
    arch = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686"}.get(
        distribution.architecture, distribution.architecture)
    glibc_major, glibc_minor = distribution.glibc
    platforms = [f"manylinux_{glibc_major}_{m}_{arch}" for m in range(glibc_minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for m, alias in legacy.items():
        if m <= glibc_minor:
            platforms.insert(platforms.index(f"manylinux_{glibc_major}_{m}_{arch}") + 1,
                             f"{alias}_{arch}")
    platforms.append(f"linux_{arch}")
    interpreter = f"cp{major}{minor}"
    out = list(tags.cpython_tags((major, minor), [interpreter, "abi3", "none"], platforms))
    out += list(tags.compatible_tags((major, minor), interpreter, platforms))
    return tuple(dict.fromkeys(out))
