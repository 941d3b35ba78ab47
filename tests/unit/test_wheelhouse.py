from __future__ import annotations

from pathlib import Path

from packaging.tags import Tag

from venvdeb.core import config
from venvdeb.python import index, wheelhouse
from venvdeb.python.index import IndexFile
from venvdeb.python.lock import LockEntry
from venvdeb.python.wheelhouse import Record

BOOKWORM = config.Distribution("bookworm", Path("/usr/bin/python3"), "3.11", "amd64", (2, 36), "m")
TAGS = index.target_tags(BOOKWORM)


def _f(name: str, sha: str | None = "h1", requires: str | None = None) -> IndexFile:
    return IndexFile(name, f"https://files/{name}", sha, requires, False)


def _entry(hashes: tuple[str, ...] = ("h1", "h2", "h3")) -> LockEntry:
    return LockEntry("pkg", "pkg", "1.0", frozenset(hashes))


def test_target_tags_follow_python_and_glibc() -> None:
    assert Tag("cp311", "cp311", "manylinux_2_36_x86_64") in TAGS
    assert Tag("cp311", "cp311", "manylinux2014_x86_64") in TAGS
    assert Tag("cp311", "abi3", "manylinux_2_17_x86_64") in TAGS
    assert Tag("cp39", "abi3", "manylinux_2_17_x86_64") in TAGS
    assert Tag("py3", "none", "any") in TAGS
    assert Tag("cp311", "cp311", "manylinux_2_38_x86_64") not in TAGS
    assert Tag("cp312", "cp312", "manylinux_2_17_x86_64") not in TAGS
    assert Tag("cp311", "cp311", "manylinux_2_17_aarch64") not in TAGS
    assert Tag("cp311", "cp311", "musllinux_1_2_x86_64") not in TAGS


def test_choose_prefers_a_usable_wheel() -> None:
    files = [_f("pkg-1.0.tar.gz"), _f("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
             _f("pkg-1.0-cp311-cp311-manylinux_2_38_x86_64.whl"),
             _f("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "h2"),
             _f("pkg-1.1-py3-none-any.whl")]
    kind, chosen = wheelhouse.choose_file(_entry(), files, TAGS, "3.11")  # type: ignore[misc]
    assert kind == "wheel"
    assert chosen.filename == "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def test_choose_falls_back_to_the_sdist_and_respects_hashes_and_requires_python() -> None:
    files = [_f("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
             _f("pkg-1.0-py3-none-any.whl", "not-locked"),
             _f("pkg-1.0-py3-none-any.whl", "h3", requires="&gt;=3.12"),
             _f("pkg-1.0.tar.gz", "h1")]
    assert wheelhouse.choose_file(_entry(), files, TAGS, "3.11") == ("sdist", files[3])
    assert wheelhouse.choose_file(_entry(("h9",)), files, TAGS, "3.11") is None


def test_simple_index_pages_link_each_wheel_with_its_hash() -> None:
    records = [Record("oslo-config", "10.2.0", "oslo_config-10.2.0-py3-none-any.whl", "ab", "downloaded"),
               Record("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", "cd", "downloaded")]
    pages = wheelhouse.simple_index(records)
    assert set(pages) == {"index.html", "oslo-config/index.html", "six/index.html"}
    parsed = index.parse_project_page(pages["oslo-config/index.html"],
                                      "file:///r/simple/oslo-config/", "oslo-config")
    assert parsed == (IndexFile("oslo_config-10.2.0-py3-none-any.whl",
                                "file:///r/files/oslo_config-10.2.0-py3-none-any.whl", "ab", None,
                                False),)
    assert '<a href="six/">six</a>' in pages["index.html"]
    assert "six==1.17.0 \\\n    --hash=sha256:cd\n" in wheelhouse.install_lock(records)


def test_records_round_trip(tmp_path: Path) -> None:
    records = [Record("b", "1", "b-1-py3-none-any.whl", "x", "built", "b-1.tar.gz", "y"),
               Record("a", "2", "a-2-py3-none-any.whl", "z", "downloaded")]
    wheelhouse.write_records(tmp_path / "m.json", records)
    loaded = wheelhouse.load_records(tmp_path / "m.json")
    assert list(loaded) == [("a", "2"), ("b", "1")]
    assert loaded[("b", "1")] == records[0]


def test_a_pin_with_no_file_for_the_distribution_names_it(tmp_path: Path) -> None:
    """Only a cp311 wheel and an sdist that does not support Python 3.13: for trixie the
    pin has nothing usable, and the error names the distribution, its Python and glibc."""
    from tests.conftest import ROOT
    from venvdeb.core.errors import IndexError_
    cfg = config.load(ROOT / "pipeline.toml")
    files = [_f("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
             _f("pkg-1.0.tar.gz", "h2", requires="&lt;3.13")]
    try:
        wheelhouse.plan([_entry()], cfg.release("2026.1"), cfg.distribution("trixie"), cfg,
                        tmp_path, {}, lister=lambda url, name: files)
    except IndexError_ as exc:
        text = f"{exc} {exc.hint}"
    else:
        raise AssertionError("no error")
    assert "no wheel for trixie (Python 3.13, glibc 2.41, amd64) nor an sdist" in text, text
    assert "pkg==1.0" in text and "exclude_distributions" in text
    plan = wheelhouse.plan([_entry()], cfg.release("2026.1"), cfg.distribution("bookworm"), cfg,
                           tmp_path, {}, lister=lambda url, name: files)
    assert [f.file.filename for f in plan.fetch] == [files[0].filename]


def test_builds_that_compile_go_first_then_the_largest_sdists() -> None:
    from venvdeb.python.build_lock import LEGACY, BuildSystem

    def build(name: str, debs: tuple[str, ...] = ()) -> wheelhouse.Build:
        return wheelhouse.Build(LockEntry(name, name, "1.0", frozenset({"h"})),
                                _f(f"{name}-1.0.tar.gz"), debs)

    builds = [build("aaa-pure"), build("big-pure"), build("cython-ext"), build("ldap", ("libldap2-dev",)),
              build("small-pure")]
    prepared = {b.entry.name: wheelhouse.Prepared(Path(f"/s/{b.entry.name}"), "h", LEGACY)
                for b in builds}
    prepared["cython-ext"] = wheelhouse.Prepared(
        Path("/s/cython-ext"), "h", BuildSystem(("setuptools>=61", "Cython>=3.0 ; python_version>'3'"),
                                                 "setuptools.build_meta"))
    sizes = {"aaa-pure": 10, "big-pure": 900, "cython-ext": 20, "ldap": 30, "small-pure": 10}
    order = [b.entry.name for b in wheelhouse.build_order(builds, prepared, sizes)]
    assert order == ["ldap", "cython-ext", "big-pure", "aaa-pure", "small-pure"]
