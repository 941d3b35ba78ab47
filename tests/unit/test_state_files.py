"""State files: written whole or not at all, and a damaged one is one clear error."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from venvdeb.core import build_record, ledger
from venvdeb.core.errors import IndexError_, StateFileError, host_error
from venvdeb.core.files import read_json, write_atomic, write_if_changed
from venvdeb.python import index, wheelhouse


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state" / "versions.json"
    write_atomic(path, '{"a": 1}\n')
    write_atomic(path, b'{"a": 2}\n')
    assert read_json(path) == {"a": 2}
    assert os.listdir(path.parent) == ["versions.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_write_if_changed_replaces_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "install-lock.txt"
    path.write_bytes(b"\xff\xfe truncated")
    assert write_if_changed(path, "six==1.17.0\n")
    assert not write_if_changed(path, "six==1.17.0\n")
    assert path.read_text() == "six==1.17.0\n"


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    write_atomic(path, "[]\n")
    with pytest.raises(TypeError):
        write_atomic(path, 42)  # type: ignore[arg-type]  # fails after the temporary exists
    assert path.read_text() == "[]\n"
    assert os.listdir(tmp_path) == ["manifest.json"]


@pytest.mark.parametrize("text", ['{"keystone": [{"digest": "ab', "", "\xff"])
def test_a_truncated_ledger_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "versions.json"
    path.write_bytes(text.encode("latin-1"))
    for attempt in (lambda: ledger.read(path), lambda: ledger.change(path).__enter__()):
        with pytest.raises(StateFileError) as caught:
            attempt()
        assert str(path) in caught.value.message and "truncated" in caught.value.message
        assert caught.value.hint and "move it aside" in caught.value.hint
    assert path.read_bytes() == text.encode("latin-1"), "a damaged ledger is left for the user"


def test_a_truncated_build_record_names_it_and_the_rebuild(tmp_path: Path) -> None:
    (tmp_path / build_record.NAME).write_text('{"source": "keystone", "vers')
    with pytest.raises(StateFileError) as caught:
        build_record.read(tmp_path, "keystone", "run 'venvdeb build keystone' first")
    assert str(tmp_path / build_record.NAME) in caught.value.message
    assert caught.value.hint == "delete it and run 'venvdeb build keystone'"
    (tmp_path / build_record.NAME).write_text('{"source": "keystone"}')
    with pytest.raises(StateFileError, match="not a build record"):
        build_record.read(tmp_path, "keystone", "run 'venvdeb build keystone' first")


def test_a_truncated_manifest_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / wheelhouse.RECORDS
    wheelhouse.write_records(path, [wheelhouse.Record("six", "1.17.0", "six.whl", "a", "built")])
    path.write_text(path.read_text()[:40])
    with pytest.raises(StateFileError, match=str(path)):
        wheelhouse.load_records(path)
    path.write_text(json.dumps([{"name": "six"}]))
    with pytest.raises(StateFileError, match="not a wheel manifest"):
        wheelhouse.load_records(path)


PAGE = """<html><body>
<a href="../../files/fixture_lib-1.0.0-py3-none-any.whl#sha256=aa">ok wheel</a>
<a href="fixture-lib-1.0.0.tar.gz#sha256=bb">ok sdist</a>
<a href="other_project-1.0.0-py3-none-any.whl#sha256=cc">another project</a>
<a href="fixture-lib-1.0.0.exe">another format</a>
{evil}
</body></html>"""


def test_an_index_page_lists_only_the_project_s_wheels_and_sdists() -> None:
    files = index.parse_project_page(PAGE.format(evil=""), "file:///i/fixture-lib/", "fixture_lib")
    assert [f.filename for f in files] == ["fixture_lib-1.0.0-py3-none-any.whl",
                                           "fixture-lib-1.0.0.tar.gz"]


@pytest.mark.parametrize("href", ["..%2F..%2F..%2Froot%2Ffixture-lib-1.0.0.tar.gz",
                                  "%2Fetc%2Ffixture-lib-1.0.0.tar.gz", "%2e%2e",
                                  ".fixture-lib-1.0.0.tar.gz", "fixture-lib-1.0.0.tar.gz%00"])
def test_a_file_name_that_is_not_a_plain_name_is_refused(tmp_path: Path, href: str) -> None:
    page = tmp_path / "simple" / "fixture-lib" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(PAGE.format(evil=f'<a href="{href}#sha256=dd">x</a>'))
    with pytest.raises(IndexError_) as caught:
        index.project_files(f"file://{tmp_path}/simple", "Fixture_Lib")
    assert f"file://{tmp_path}/simple/fixture-lib/" in caught.value.message
    assert "not a plain file name" in caught.value.message


def test_a_host_fault_names_its_path_or_the_workdir(tmp_path: Path) -> None:
    full = host_error(OSError(28, "No space left on device"), tmp_path)
    assert full.message == f"No space left on device: {tmp_path}"
    assert full.hint and "rerun the same command" in full.hint
    missing = host_error(FileNotFoundError(2, "No such file or directory", "/proc/x"),
                         Path("/proc/x"))
    assert missing.message == "No such file or directory: /proc/x"
    assert missing.hint and "--workdir" in missing.hint
    tool = host_error(FileNotFoundError(2, "No such file or directory", "reprepro"), tmp_path)
    assert tool.hint and "bin/setup" in tool.hint


def test_an_install_test_left_to_the_publisher_never_counts_as_passed(tmp_path: Path) -> None:
    """``deferred`` (an unprivileged worker cannot boot a node) is recorded for the exact
    bytes, and stays pending: publish and check ask for ``passed``."""
    from venvdeb.core import check_records
    from venvdeb.qa import gate
    ledger, deb = tmp_path / "checks.json", tmp_path / "a.deb"
    deb.write_bytes(b"deb")
    check_records.defer(ledger, [deb], "install", "not root (uid 104): left to the publisher")
    assert check_records.result(ledger, deb, "install") == "deferred"
    assert gate.pending(ledger, [deb], "install")
    check_records.record(ledger, [deb], "install", True, "on the publisher")
    assert not gate.pending(ledger, [deb], "install")
    deb.write_bytes(b"other bytes")
    assert check_records.result(ledger, deb, "install") is None
