"""asd.utils: files written whole, with the permissions of any new file."""
from __future__ import annotations

import os

import pytest

from asd.utils import atomic_write_bytes


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_write_gives_a_new_files_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "deep" / "scores.csv", b"a,1\n")
        (tmp_path / "plain.csv").write_bytes(b"a,1\n")
    finally:
        os.umask(old)
    assert (tmp_path / "deep" / "scores.csv").read_bytes() == b"a,1\n"
    mode = lambda p: p.stat().st_mode & 0o777
    assert mode(tmp_path / "deep" / "scores.csv") == mode(tmp_path / "plain.csv") == 0o666 & ~umask
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["scores.csv"]  # no temporary left behind
