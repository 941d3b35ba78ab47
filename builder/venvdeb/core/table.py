"""A TOML table being read, with typed getters whose errors name file and key."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from venvdeb.core.allowlist import Kind
from venvdeb.core.errors import ConfigError


class Table:
    """A TOML table being read: typed getters that name file and key on error."""

    def __init__(self, file: Path, key: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.key = key
        self.data = data
        self.seen: set[str] = set()

    def where(self, name: str) -> str:
        return f"{self.key}.{_quote(name)}" if self.key else _quote(name)

    def fail(self, name: str, problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.file}: {self.where(name)}: {problem}", hint=hint)

    def get(self, name: str, kind: type, default: Any = ..., what: str = "") -> Any:
        self.seen.add(name)
        if name not in self.data:
            if default is ...:
                raise self.fail(name, "missing required key")
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, f"expected {what or kind.__name__}, got "
                                  f"{type(value).__name__} {value!r}")
        return value

    def string(self, name: str, default: Any = ..., kind: Kind | None = None) -> str:
        """A string; with ``kind``, one that matches its allowlist whole."""
        value = self.get(name, str, default, "a string")
        if isinstance(value, str) and not value.strip():
            raise self.fail(name, "must not be empty")
        if isinstance(value, str) and kind is not None:
            self.check(name, value, kind)
        return cast(str, value)

    def strings(self, name: str, default: Any = ..., kind: Kind | None = None) -> tuple[str, ...]:
        value = self.get(name, list, default, "a list of strings")
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(name, f"expected a list of non-empty strings, got item {item!r}")
            if kind is not None:
                self.check(name, item, kind)
        return tuple(value)

    def check(self, name: str, value: str, kind: Kind) -> str:
        """``value`` (read from key ``name``) if it is of ``kind``, else a ConfigError."""
        problem = kind.problem(value)
        if problem:
            raise self.fail(name, problem)
        return value

    def table(self, name: str, default: Any = ...) -> Table:
        value = self.get(name, dict, default, "a table")
        return Table(self.file, self.where(name), value)

    def tables(self, name: str) -> list[Table]:
        """An array of tables (``[[name]]``), each as a Table; absent is empty."""
        raw = self.get(name, list, [], "an array of tables")
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self.fail(name, f"item {i} must be a table")
            out.append(Table(self.file, f"{self.where(name)}[{i}]", item))
        return out

    def subtables(self) -> list[tuple[str, Table]]:
        out = []
        for name, value in self.data.items():
            self.seen.add(name)
            if not isinstance(value, dict):
                raise self.fail(name, f"expected a table, got {type(value).__name__} {value!r}")
            out.append((name, Table(self.file, self.where(name), value)))
        return out

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            known = ", ".join(sorted(self.seen)) or "none"
            raise self.fail(unknown[0], f"unknown key (known keys here: {known})")


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'
