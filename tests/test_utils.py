"""asd.utils: long lists shortened in messages; files written whole, with the permissions of any new file;
a lock between processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from asd import utils
from asd.utils import (and_more, atomic_torch_save, atomic_write_bytes, atomic_write_json, exclusive, not_a_folder,
                       seed_everything, written_whole)


def test_written_whole_renames_into_place_or_leaves_nothing(tmp_path):
    target = tmp_path / "clip.wav"
    with written_whole(target) as part:
        part.write_bytes(b"half")
        assert not target.exists()  # a reader sees no partial file
        part.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(OSError), written_whole(tmp_path / "other.wav") as part:
        part.write_bytes(b"half")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == [target]


def test_not_a_folder_says_why_a_path_cannot_be_read_as_one(tmp_path):
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    assert not_a_folder(tmp_path) is None
    assert not_a_folder(tmp_path / "clip.wav") == "not a folder"
    assert not_a_folder(tmp_path / "missing") == "no such folder"
    (tmp_path / "broken").symlink_to(tmp_path / "missing")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert not_a_folder(tmp_path / "broken") == f"a symbolic link that leads to no folder ({tmp_path / 'missing'})"
    assert not_a_folder(tmp_path / "loop") == f"a symbolic link that leads to no folder ({tmp_path / 'loop'})"


def test_and_more_names_the_first_items_and_counts_the_rest(tmp_path):
    clips = [tmp_path / f"{n}.wav" for n in "abcd"]
    assert and_more(clips[:1]) == str(clips[0])
    assert and_more(clips) == f"{clips[0]} and 3 more"
    assert and_more(["a", "b", "c"], shown=2) == "a, b and 1 more"
    assert and_more(["a", "b"], shown=5) == "a, b"


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


def test_a_failed_atomic_write_leaves_no_file_and_no_open_descriptor(tmp_path, monkeypatch):
    def refuse(*args):
        raise PermissionError("no")

    opened = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    monkeypatch.setattr(utils.os, "chmod", refuse)
    with pytest.raises(PermissionError):
        atomic_write_bytes(tmp_path / "scores.csv", b"a,1\n")
    assert list(tmp_path.iterdir()) == []
    if opened is not None:
        assert len(os.listdir("/proc/self/fd")) == opened


def test_json_and_torch_files_are_written_whole_and_read_back(tmp_path):
    atomic_write_json(tmp_path / "a" / "state.json", {"b": 1, "a": [0.5, None]}, sort_keys=True)
    assert (tmp_path / "a" / "state.json").read_text() == '{\n  "a": [\n    0.5,\n    null\n  ],\n  "b": 1\n}'
    atomic_write_json(tmp_path / "compact.json", {"a": 1}, indent=None)
    assert (tmp_path / "compact.json").read_text() == '{"a": 1}'
    atomic_torch_save(tmp_path / "w.pt", {"w": torch.arange(3.0)})
    assert torch.equal(torch.load(tmp_path / "w.pt", weights_only=True)["w"], torch.arange(3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "compact.json", "w.pt"]  # no temporaries


@pytest.mark.skipif(utils.fcntl is None, reason="locks need fcntl")
def test_exclusive_makes_another_process_wait_until_the_block_ends(tmp_path):
    lock = tmp_path / "locks" / "a.lock"
    script = (f"import time; from asd.utils import exclusive\n"
              f"with exclusive({str(lock)!r}, 'waiting'):\n    print(time.time())")
    with exclusive(lock, "unused"):
        other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        assert other.stderr.readline().strip() == "waiting"  # however long its imports take
        time.sleep(0.5)
        assert other.poll() is None  # still waiting
        released = time.time()
    out, err = other.communicate(timeout=60)
    assert float(out) >= released and err == ""
    with exclusive(lock, "unused"):  # free again, taken at once
        pass


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is available here")
def test_cuda_asked_for_where_there_is_none_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.delenv("ASD_DEVICE", raising=False)
    assert utils.resolve_device().type == "cpu"  # auto: the CPU
    for asked in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match=f"device '{asked}' requested but CUDA is not available: ask for cpu"):
            utils.resolve_device(asked)
    monkeypatch.setenv("ASD_DEVICE", "cuda")  # where it came from, when not from the caller
    with pytest.raises(RuntimeError, match=r"device 'cuda' \(from ASD_DEVICE\) requested"):
        utils.resolve_device()


def _git(cwd, *args) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_the_commit_recorded_is_the_packages_checkout_not_a_repository_around_a_copy(tmp_path):
    project = tmp_path / "project"  # a project of one's own, asd installed in its virtual environment
    package = project / ".venv" / "site-packages" / "asd"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "a project")
    assert utils.git_commit(package) is None
    checkout = tmp_path / "book" / "asd"  # the book's own repository, installed editable
    checkout.mkdir(parents=True)
    (checkout / "__init__.py").write_text("")
    _git(checkout.parent, "init", "-q")
    _git(checkout.parent, "add", ".")
    _git(checkout.parent, "commit", "-q", "-m", "the book")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    assert utils.git_commit(checkout) == head and len(head) == 40
    assert utils.git_commit(tmp_path / "elsewhere") is None  # no folder, no git: no commit


def test_versions_name_the_package_and_the_libraries_behind_its_numbers():
    import torch

    import asd

    found = utils.versions()
    assert found["asd"] == asd.__version__ and found["torch"] == torch.__version__
    assert {"python", "librosa", "numpy", "scikit-learn"} <= found.keys()


def test_seed_everything_seeds_python_numpy_and_torch_and_makes_cudnn_deterministic(monkeypatch):
    import random

    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    random.seed(1)  # other seeds first
    np.random.seed(1)
    torch.manual_seed(1)
    seed_everything(7)
    assert random.random() == random.Random(7).random()
    assert np.random.rand() == np.random.RandomState(7).rand()
    assert torch.rand(1).item() == torch.rand(1, generator=torch.Generator().manual_seed(7)).item()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark

