from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from venvdeb.core import config
from venvdeb.core.errors import ConfigError
from venvdeb.python import constraints

ENV = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
       "platform_machine": "x86_64", "implementation_name": "cpython", "os_name": "posix",
       "platform_system": "Linux", "platform_python_implementation": "CPython",
       "platform_release": "", "platform_version": "", "implementation_version": "3.11.2",
       "extra": ""}


def _pins(uc: str, extra: str = "", deny: str = "") -> constraints.PinSet:
    return constraints.pins_for_target(
        constraints.parse_pin_lines(uc.splitlines(), "uc.txt"),
        constraints.parse_pin_lines(extra.splitlines(), "config"),
        constraints.parse_denylist(deny), ENV)


def test_markers_and_denylist_apply_to_the_target() -> None:
    pins = _pins("a===1.0\nb===2.0;python_version=='3.10'\nb===2.1;python_version>='3.11'\n"
                 "Flake8===7.0\n", deny="# linters\nflake8\n")
    assert [(p.name, p.version) for p in pins.pins] == [("a", "1.0"), ("b", "2.1")]
    assert pins.skipped_by_marker == 1
    assert pins.denied == ("flake8",)
    assert pins.pins[1].origin == "uc.txt:3"


def test_extra_pin_may_add_a_denylisted_name() -> None:
    pins = _pins("a===1.0\n", extra="certifi==2025.11.12", deny="certifi\n")
    assert "certifi" in pins.names()


def test_conflicting_pins_name_both_places() -> None:
    with pytest.raises(ConfigError, match=r"conflicting pins for a: 1.0 at uc.txt:1 and 1.1 at uc.txt:3"):
        _pins("a===1.0\nb===1\na===1.1\n")
    # the same pin twice is no conflict
    assert len(_pins("a===1.0\na===1.0\n").pins) == 1


@pytest.mark.parametrize("line", ["a=== ", "a==>1", "a 1.0", "a>=1.0", "a===1.0,<2"])
def test_malformed_line_names_file_and_line(line: str) -> None:
    with pytest.raises(ConfigError, match=r"^uc.txt:2: "):
        _pins(f"# comment\n{line}\n")


@pytest.mark.parametrize(("release", "total", "applying"), [("2026.1", 554, 553), ("2025.1", 599, 585)])
def test_real_release_counts(release: str, total: int, applying: int) -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    rel = cfg.release(release)
    uc = constraints.parse_pin_lines(rel.upper_constraints.read_text().splitlines(), "uc")
    assert len(uc) == total
    pins = constraints.load_pins(rel, cfg.distribution("bookworm"), cfg.path)
    assert len(pins.pins) == applying + len(rel.extra_pins)


def test_marker_environment_follows_the_distribution(tmp_path: Path) -> None:
    dist = config.Distribution("trixie", Path("/usr/bin/python3"), "3.13", "arm64", (2, 41), "m")
    env = constraints.marker_environment(dist)
    assert env["python_version"] == "3.13" and env["platform_machine"] == "aarch64"
    assert env["python_full_version"] == "3.13.0"
    assert env["implementation_version"] == "3.13.0", "the target's, not this interpreter's"
