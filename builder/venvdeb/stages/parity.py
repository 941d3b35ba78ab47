"""``venvdeb parity``: Debian's packages of the projects on one booted node, ours
on another, and what differs between the two.

Two nodes in all, whatever the number of projects (each holds every project
asked for), measured at once. Debian's node is measured again only when apt would
install other packages or versions there (or ``fresh``); ours, always. With
``files``, no node: the packages' files only (``venvdeb.qa.parity_files``).
Every difference must be listed, with its reason, in the documentation
(``docs/parity.md``); one that is not fails the command after the table is printed.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import build_record
from venvdeb.core.config import Config
from venvdeb.core.progress import say
from venvdeb.core.target import Target, project_on
from venvdeb.core.workdir import Workdir, shared_cache
from venvdeb.qa import parity, parity_files, parity_node

SIDES = ("debian", "ours")
SIDE_NAMES = {"debian": "Debian's node", "ours": "our node"}


def cache_dir() -> Path:
    """Debian's side, kept per package closure: it changes only with the mirror."""
    return shared_cache() / "parity"
markdown = parity.markdown


@dataclass(frozen=True)
class ParityResult:
    judged: tuple[parity.Judged, ...]
    stale: tuple[parity.Documented, ...]
    measured: tuple[tuple[str, parity_node.Measured], ...]  # per side
    documented_in: Path

    @property
    def undocumented(self) -> tuple[parity.Row, ...]:
        return parity.undocumented(self.judged)

    def lines(self) -> list[str]:
        out = parity.table(self.judged)
        for side, m in self.measured:
            out.append(f"{SIDE_NAMES[side]}: {m.state}; " + ", ".join(
                f"{step} {seconds:.0f} s" for step, seconds in m.timings))
        for d in self.stale:
            out.append(f"documented but not seen: {d.project} {d.aspect} {d.item} "
                       f"({d.debian} / {d.ours}): closed or changed; update {self.documented_in}")
        out.append(parity.summary(self.judged, str(self.documented_in)))
        return out


def run_parity(config: Config, work: Workdir, t: Target, names: Sequence[str],
               documented_in: Path, *, files: bool = False, fresh: bool = False) -> ParityResult:
    projects = [project_on(config, name, t) for name in names]
    debs = [deb for name in names for deb in build_record.project_record(work, t, name).debs]
    scopes = parity.scopes(projects)
    ports = tuple(u.port for p in projects for b in p.packages for u in b.uwsgi)
    documented = parity.read_documented(documented_in.read_text()) \
        if documented_in.is_file() else ()
    if files:
        log = work.fresh_log(t.logs, "parity-files")
        say(f"parity: the files of Debian's {', '.join(n for s in scopes for n in s.install)} "
            f"(apt-get download) and of ours (log: {log})")
        rows = parity.compare(parity_files.debian_facts(t.distribution, scopes, log),
                              parity_files.facts(scopes, debs), names)
        judged = parity.judge(rows, documented)
        return ParityResult(judged, parity.stale(judged, documented, [p.name for p in projects]),
                            (), documented_in)
    logs = {side: work.fresh_log(t.logs, f"parity-{side}") for side in SIDES}
    say(f"parity: Debian's {', '.join(n for s in scopes for n in s.install)} on one booted "
        f"node, ours on another (logs: {logs['debian']}, {logs['ours']})")
    with ThreadPoolExecutor(len(SIDES)) as pool:
        futures = {side: pool.submit(parity_node.measure, t.distribution, scopes,
                                     debs if side == "ours" else (), ports, logs[side],
                                     cache=None if side == "ours" or fresh else cache_dir())
                   for side in SIDES}
        measured = {side: f.result() for side, f in futures.items()}
    rows = parity.compare(measured["debian"].facts, measured["ours"].facts, names)
    judged = parity.judge(rows, documented)
    return ParityResult(judged, parity.stale(judged, documented, [p.name for p in projects]),
                        tuple(measured.items()), documented_in)
