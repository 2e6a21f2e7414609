"""The listener's durable write: whole files under their final name, new study folders, stale leftovers."""

import os
import time
from pathlib import Path

from services.listener.durable_write import clean_incoming, write_durably


def test_chunks_land_whole_under_the_final_name_in_a_new_folder(tmp_path: Path) -> None:
    incoming, final = tmp_path / "incoming", tmp_path / "studies" / "ab" / "abcd" / "x.dcm"
    incoming.mkdir()
    chunks = (b"header", os.urandom(300_000), b"", b"tail")
    write_durably(chunks, final, incoming)
    assert final.read_bytes() == b"".join(chunks)
    assert list(incoming.iterdir()) == []


def test_the_same_instance_twice_is_stored_once(tmp_path: Path) -> None:
    incoming, final = tmp_path / "incoming", tmp_path / "s" / "x.dcm"
    incoming.mkdir()
    write_durably((b"first",), final, incoming)
    write_durably((b"second",), final, incoming)
    assert [p.name for p in final.parent.iterdir()] == ["x.dcm"]
    assert final.read_bytes() == b"second"


def test_only_stale_part_files_are_cleaned(tmp_path: Path) -> None:
    stale, fresh, other = tmp_path / "a.part", tmp_path / "b.part", tmp_path / "c.marker"
    for path in (stale, fresh, other):
        path.write_bytes(b"x")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert clean_incoming(tmp_path, older_than_s=600) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.part", "c.marker"]
