"""The closure cache: content-addressed, so a hit is never stale."""
from __future__ import annotations

from pathlib import Path

from venvdeb.python import closure
from venvdeb.python.wheelhouse import Record

RECORDS = (Record("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", "a" * 64, "downloaded"),
           Record("pbr", "7.0.1", "pbr-7.0.1-py2.py3-none-any.whl", "b" * 64, "downloaded"))


def _key(records: tuple[Record, ...] = RECORDS, source: str = "s" * 64) -> str:
    return closure.cache_key(source, ("ldap",), "keystone", "29.0.2", (), records)


def test_the_key_follows_every_input() -> None:
    assert _key() == _key()
    assert _key(source="t" * 64) != _key()
    other = (RECORDS[0], Record("pbr", "7.0.1", "pbr-7.0.1-py2.py3-none-any.whl", "c" * 64,
                                "downloaded"))
    assert _key(other) != _key(), "a wheel with other content is another closure"
    assert closure.cache_key("s" * 64, (), "keystone", "29.0.2", (), RECORDS) != _key()


def test_store_then_hit_and_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    assert closure.cached(tmp_path, _key(), "keystone", RECORDS) is None
    closure.store(tmp_path, _key(), closure.Closure("keystone", (RECORDS[1],)))
    hit = closure.cached(tmp_path, _key(), "keystone", RECORDS)
    assert hit is not None and hit.records == (RECORDS[1],)
    (tmp_path / f"{_key()}.json").write_text("not json")
    assert closure.cached(tmp_path, _key(), "keystone", RECORDS) is None
    (tmp_path / f"{_key()}.json").write_text('[["gone", "1.0"]]')
    assert closure.cached(tmp_path, _key(), "keystone", RECORDS) is None
