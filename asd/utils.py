"""Seeding, device choice, small file helpers and the source hashes that key the caches.

PyTorch is imported where it is used: the command line's file tools (``asd cut``, ``--help``) start
without it."""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


PACKAGE = Path(__file__).parent


def and_more(items: Sequence[object], shown: int = 1) -> str:
    """The first ``shown`` of ``items``, comma-separated, then how many more: ``"a.wav, b.wav and 3 more"``."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(str(item) for item in items[:shown]) + more


def not_a_folder(path: Path) -> str | None:
    """Why ``path`` cannot be read as a folder (``"not a folder"``, ``"no such folder"``, a link that
    leads nowhere), None if it can."""
    if path.is_dir():
        return None
    if path.exists():
        return "not a folder"
    if path.is_symlink():  # broken, or a loop: exists() cannot tell
        return f"a symbolic link that leads to no folder ({os.readlink(path)})"
    return "no such folder"


def source_hash(modules: tuple[str, ...], package: Path = PACKAGE) -> str:
    """Hash of the source of ``modules`` (names of ``asd`` modules, read from ``package``), for cache
    keys that must change when the code that made the cached values does."""
    h = hashlib.sha256()
    for name in modules:
        h.update((Path(package) / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def versions() -> dict[str, str]:
    """The versions of Python, ``asd`` and the libraries that decide its numbers, for records and bug reports."""
    from asd import __version__

    libraries = {name: metadata.version(name) for name in ("torch", "librosa", "numpy", "scikit-learn")}
    return {"python": platform.python_version(), "asd": __version__, **libraries}


def git_commit(package: Path = PACKAGE) -> str | None:
    """The commit of the checkout ``package`` is in (an editable install of the book's repository),
    else None: an installed copy inside another repository (a virtual environment in a project
    of one's own) does not take that repository's commit."""
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True,
                             cwd=package, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode or len(lines) != 2 or Path(lines[0]).resolve() != Path(package).resolve().parent:
        return None
    return lines[1]


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's kind and PyTorch's thread count."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch and make cuDNN deterministic."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def resolve_device(device: str | None = None) -> torch.device:
    """``auto`` (resolved by :func:`asd.config.setting`: ``$ASD_DEVICE``, else auto) picks CUDA when
    available, else CPU."""
    import torch

    from asd.config import setting

    source = "" if device is not None else " (from ASD_DEVICE)"
    device = setting("device", device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r}{source} requested but CUDA is not available: ask for cpu, or auto "
                           "(CUDA where there is a GPU)")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}{source}; use auto, cpu or cuda")
    return torch.device(device)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file; its permissions as
    ``open`` gives a new file (``mkstemp`` alone would make it readable by its owner only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o666 & ~umask)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A hidden path beside ``path`` to write to (by a library that takes a path), renamed to ``path``
    when the block ends and removed if it fails: readers never see a partial file."""
    part = path.with_name(f".{path.name}.part")
    try:
        yield part
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, value, indent: int | None = 2, sort_keys: bool = False) -> None:
    """``value`` as JSON at ``path``, written as :func:`atomic_write_bytes` writes."""
    atomic_write_bytes(path, json.dumps(value, indent=indent, sort_keys=sort_keys).encode())


def atomic_torch_save(path: Path, value) -> None:
    """``torch.save`` of ``value`` at ``path``, written as :func:`atomic_write_bytes` writes."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write_bytes(path, buffer.getvalue())


@contextmanager
def exclusive(path: Path, waiting: str) -> Iterator[None]:
    """Run the block holding an exclusive lock on the file ``path`` (created if missing): another
    process, or thread, entering a block on the same path waits, printing ``waiting`` once.
    The lock goes with the block, however it ends. Without ``fcntl`` (Windows) nothing is locked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(waiting, file=sys.stderr, flush=True)
                fcntl.flock(f, fcntl.LOCK_EX)
        yield
