"""Parity with Debian, measured: what a node shows after installing Debian's
packages of a project, next to what it shows after installing ours.

Facts are plain data, ``(project, aspect, item, value)``: the binary packages
of the project's source that got installed, its users and groups, its files
under /etc (kind, owner, group, mode), its commands in /usr/bin, its systemd
units (enabled and active state after the install) and the TCP ports that
listen (and which unit listens). Everything here is pure: ``compare`` lines up
the two nodes' facts, ``judge`` marks each difference as documented (with the
reason ``docs/parity.md`` gives) or not, ``table`` prints them. Gathering the
facts on a booted node is ``venvdeb.qa.parity_node``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from venvdeb.core import columns
from venvdeb.core.config import Project

Aspect = Literal["package", "user", "group", "etc", "command", "unit", "port"]
ASPECTS: tuple[Aspect, ...] = ("package", "user", "group", "etc", "command", "unit", "port")
#: a fact about the node itself, not of one project (a port nobody's unit holds)
NODE = "(node)"
ABSENT = "-"


@dataclass(frozen=True)
class Scope:
    """One project as both nodes see it: its Debian source package name (ours
    is named alike), the binary packages an operator installs, its user."""

    project: str
    source: str
    install: tuple[str, ...]
    user: str | None


def scopes(projects: Sequence[Project]) -> tuple[Scope, ...]:
    """What to install on each node: the packages named like Debian's, the same
    names on both sides (that is the point of naming them so)."""
    return tuple(Scope(p.name, p.name, tuple(b.name for b in p.packages), p.user)
                 for p in projects)


@dataclass(frozen=True, order=True)
class Fact:
    project: str
    aspect: Aspect
    item: str
    value: str


@dataclass(frozen=True)
class Row:
    project: str
    aspect: Aspect
    item: str
    debian: str  # ABSENT when Debian's node lacks it
    ours: str

    @property
    def same(self) -> bool:
        return self.debian == self.ours


@dataclass(frozen=True)
class Documented:
    """A difference ``docs/parity.md`` lists, with its reason."""

    project: str
    aspect: str
    item: str
    debian: str
    ours: str
    reason: str

    def matches(self, row: Row) -> bool:
        return (self.project, self.aspect, self.item, self.debian, self.ours) == \
            (row.project, row.aspect, row.item, row.debian, row.ours)


@dataclass(frozen=True)
class Judged:
    row: Row
    reason: str | None  # the documented reason of a difference; None: same, or undocumented

    @property
    def status(self) -> str:
        if self.row.same:
            return "same"
        return "documented" if self.reason else "NOT DOCUMENTED"


def compare(debian: Iterable[Fact], ours: Iterable[Fact],
            projects: Sequence[str] = ()) -> tuple[Row, ...]:
    """Every (project, aspect, item) either node has, with each node's value;
    in the order of ``projects`` (then as first seen), then ``ASPECTS``, then the item."""
    sides: dict[tuple[str, Aspect, str], list[str]] = {}
    order: dict[str, int] = {p: i for i, p in enumerate(projects)}
    for index, facts in enumerate((debian, ours)):
        for fact in facts:
            order.setdefault(fact.project, len(order))
            values = sides.setdefault((fact.project, fact.aspect, fact.item), [ABSENT, ABSENT])
            values[index] = fact.value
    keys = sorted(sides, key=lambda k: (k[0] == NODE, order[k[0]], ASPECTS.index(k[1]),
                                        _natural(k[2])))
    return tuple(Row(p, a, i, *sides[(p, a, i)]) for p, a, i in keys)


def _natural(item: str) -> tuple[int, str]:
    """Ports by number, the rest by name."""
    number = re.fullmatch(r"tcp/(\d+)", item)
    return (int(number.group(1)), "") if number else (0, item)


def judge(rows: Iterable[Row], documented: Sequence[Documented]) -> tuple[Judged, ...]:
    out = []
    for row in rows:
        found = None if row.same else next((d for d in documented if d.matches(row)), None)
        out.append(Judged(row, found.reason if found else None))
    return tuple(out)


def undocumented(judged: Iterable[Judged]) -> tuple[Row, ...]:
    return tuple(j.row for j in judged if not j.row.same and not j.reason)


def stale(judged: Sequence[Judged], documented: Sequence[Documented],
          projects: Sequence[str]) -> tuple[Documented, ...]:
    """Documented differences of the compared projects that this run did not see
    (closed, or changed): the documentation should drop or update them."""
    seen = {id(d) for j in judged for d in documented if d.matches(j.row) and not j.row.same}
    return tuple(d for d in documented if d.project in projects and id(d) not in seen)


_CELL = re.compile(r"^\|(.*)\|\s*$")


def read_documented(text: str) -> tuple[Documented, ...]:
    """The rows of the Markdown tables in ``text`` whose second cell is an aspect:
    ``| project | aspect | item | Debian | ours | reason |`` (backticks are dropped,
    ``-`` means absent, ``\\|`` is a literal bar)."""
    out = []
    for line in text.splitlines():
        match = _CELL.match(line.strip())
        if not match:
            continue
        cells = [c.strip().replace("`", "").replace("\0", "|")
                 for c in match.group(1).replace("\\|", "\0").split("|")]
        if len(cells) == 6 and cells[1] in ASPECTS:
            out.append(Documented(*cells))
    return tuple(out)


def markdown(rows: Iterable[Row]) -> list[str]:
    """Differences as rows of the documentation's table, their reason to be written."""
    return [f"| {r.project} | {r.aspect} | `{r.item}` | {_md(r.debian)} | {_md(r.ours)} | "
            f"(reason) |" for r in rows]


def _md(value: str) -> str:
    return value if value == ABSENT else f"`{value.replace('|', chr(92) + '|')}`"


def table(judged: Sequence[Judged]) -> list[str]:
    head = ("project", "aspect", "item", "Debian", "ours", "")
    body = [(j.row.project, j.row.aspect, j.row.item, j.row.debian, j.row.ours, j.status)
            for j in judged]
    return columns.aligned(head, body)


def summary(judged: Sequence[Judged], documented_in: str) -> str:
    differ = [j for j in judged if not j.row.same]
    missing = undocumented(judged)
    text = (f"parity: {len(judged)} facts, {len(judged) - len(differ)} the same, "
            f"{len(differ)} differ")
    if not differ:
        return text
    if missing:
        return text + f", {len(missing)} of them not documented in {documented_in}"
    return text + f", each documented in {documented_in}"
