"""Fetch the official DCASE 2020 Task 2 archives from Zenodo, verified and unpacked.

Three Zenodo records (ids in parentheses) hold one zip per machine type, each of which holds
``<machine>/{train,test}/...``, unpacked where the DCASE 2020 baseline expects it:

* ``dev`` (3678171): ``dev_data_<machine>.zip`` -> ``dev_data/<machine>/{train,test}/``
* ``additional`` (3727685): ``eval_data_train_<machine>.zip`` -> ``eval_data/<machine>/train/``
* ``eval`` (3841772): ``eval_data_test_<machine>.zip`` -> ``eval_data/<machine>/test/`` (unlabelled
  clips), plus the ground truth published afterwards in a fourth record (3951620):
  ``eval_data_list.csv`` beside ``eval_data/``, where :func:`asd.data.find_ground_truth` finds it

File names, sizes, MD5s and download links come from Zenodo's record API
(``{base_url}/api/records/<id>``). A download streams to ``<file>.part``, resumes with an
HTTP ``Range`` request, and is renamed to ``<file>`` only once its size and MD5 match; the
zip is then unpacked and deleted, and a marker file ``.<file>.done`` makes later calls
no-ops. Only the standard library's ``urllib`` is used, so any HTTP server (a local one in
the tests) can stand in for Zenodo through ``base_url``.
"""
from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from pathlib import Path

from tqdm.auto import tqdm

from asd.data import GROUND_TRUTH

ZENODO = "https://zenodo.org"
MACHINES = ("fan", "pump", "slider", "ToyCar", "ToyConveyor", "valve")
SETS = {  # which -> (Zenodo record id, archive name pattern)
    "dev": (3678171, "dev_data_{}.zip"),
    "additional": (3727685, "eval_data_train_{}.zip"),
    "eval": (3841772, "eval_data_test_{}.zip"),
}
FOLDERS = {"dev": "dev_data", "additional": "eval_data", "eval": "eval_data"}  # where each set goes
GROUND_TRUTH_RECORD = 3951620  # eval_data_list.csv, the eval set's labels
TIMEOUT_S = 30.0
CHUNK = 1 << 20

# Fallback when the record API cannot be used: the archives' MD5s as published in
# soundata (soundata/datasets/dcase2020task2.py); sizes are not listed there.
KNOWN_MD5 = {
    "dev_data_fan.zip": "649bdfc06263ae7a838963f43b6641e6",
    "dev_data_pump.zip": "90e7091ef722b7238a7f1009365779cd",
    "dev_data_slider.zip": "da24a757719f0d94d5aa2d646bbfdc86",
    "dev_data_ToyCar.zip": "4dec75ca8d9f666aa9e4c1894a740501",
    "dev_data_ToyConveyor.zip": "03b6aa1bfd09a39d53af0ba39f71fa91",
    "dev_data_valve.zip": "34d2672f55bb041589ef79c10dc89934",
    "eval_data_train_fan.zip": "567798854130c8019df8b664c095ed1e",
    "eval_data_train_pump.zip": "4e33ae9c0db5cc88437675f5e317caee",
    "eval_data_train_slider.zip": "f84f186f4295fc23754abcdd1b0580a7",
    "eval_data_train_ToyCar.zip": "a5d4ccd498af70b04dd74b644b820006",
    "eval_data_train_ToyConveyor.zip": "0e808ac0b761e9fb13d5e0c65caff00d",
    "eval_data_train_valve.zip": "057cdd560caffb8305449541afd28c6d",
    "eval_data_test_fan.zip": "1eb9356a768cadfd0f2e59a5c57e578b",
    "eval_data_test_pump.zip": "23a8f8f924be218c69df67fe07360348",
    "eval_data_test_slider.zip": "0193c769073840332ce3aad84b1ccaa2",
    "eval_data_test_ToyCar.zip": "bea2bdd612f616be8f2b8eb087b32c7c",
    "eval_data_test_ToyConveyor.zip": "ccfcc9847c7d3404d7ee9d6d9e0b2ba2",
    "eval_data_test_valve.zip": "f69c551d2088691050d20cccca9d631c",
}


class DownloadError(RuntimeError):
    """A download failed: unreachable server, bad answer, or checksum mismatch."""


@dataclass(frozen=True)
class RemoteFile:
    """One archive on the server: its name, download URL, MD5 and size (if known)."""

    key: str
    url: str
    md5: str
    size: int | None


def archive_name(which: str, machine: str) -> str:
    """Zenodo file name of one set and machine, e.g. ``dev_data_slider.zip``."""
    if which not in SETS:
        raise ValueError(f"unknown set {which!r}; choose one of {', '.join(SETS)}")
    if machine not in MACHINES:
        raise ValueError(f"unknown machine {machine!r}; choose one of {', '.join(MACHINES)}")
    return SETS[which][1].format(machine)


def download(
    dest: Path,
    which: str = "dev",
    machine: str = "slider",
    base_url: str = ZENODO,
    progress: bool = True,
) -> Path:
    """Download, verify and unpack one DCASE 2020 Task 2 archive into ``dest``.

    Returns ``dest``, which then holds ``dev_data/<machine>/...`` or ``eval_data/<machine>/...``
    (``eval`` also fetches the ground-truth list ``dest/eval_data_list.csv``). A zip already in
    ``dest`` is used if it verifies, else replaced. A second call finds the marker (and the list)
    and returns without touching the network.
    """
    key = archive_name(which, machine)
    dest = Path(dest)
    marker = dest / f".{key}.done"
    if not marker.exists():
        archive, remote = fetch(dest, SETS[which][0], key, base_url, progress)
        extract(archive, dest, FOLDERS[which], machine)
        marker.write_text(f"{remote.md5}  {key}\n")
        archive.unlink()
    if which == "eval" and not (dest / GROUND_TRUTH).exists():
        fetch(dest, GROUND_TRUTH_RECORD, GROUND_TRUTH, base_url, progress)
    return dest


def fetch(dest: Path, record_id: int, key: str, base_url: str = ZENODO,
          progress: bool = True) -> tuple[Path, RemoteFile]:
    """Download file ``key`` of a Zenodo record to ``dest/key``: resumed, size- and MD5-verified."""
    dest.mkdir(parents=True, exist_ok=True)
    remote = _remote_file(base_url, record_id, key)
    target = dest / key
    if not (target.exists() and _matches(target, remote)):
        target.unlink(missing_ok=True)
        _fetch(remote, dest / f"{key}.part", progress)
        (dest / f"{key}.part").replace(target)
    return target, remote


def _remote_file(base_url: str, record_id: int, key: str) -> RemoteFile:
    """Look ``key`` up in the record API; use :data:`KNOWN_MD5` if the API answers unusably."""
    base_url = base_url.rstrip("/")
    api = f"{base_url}/api/records/{record_id}"
    try:
        record = json.loads(_read(api))
        entry = next(f for f in record["files"] if f["key"] == key)
        algo, _, md5 = entry["checksum"].partition(":")
        if algo != "md5":
            raise ValueError(f"checksum {entry['checksum']!r} is not MD5")
        return RemoteFile(key, entry["links"]["self"], md5, int(entry["size"]))
    except DownloadError as err:
        if not isinstance(err.__cause__, urllib.error.HTTPError):
            raise  # unreachable server: a fallback URL on it would fail the same way
        reason = str(err)
    except StopIteration:
        reason = f"{key} not listed"
    except (LookupError, TypeError, ValueError) as err:
        reason = f"unexpected JSON: {_one_line(err)}"
    if key not in KNOWN_MD5:
        raise DownloadError(f"record API {api} unusable ({reason}) and no known MD5 of {key} to verify it")
    warnings.warn(f"record API {api} unusable ({reason}); using the known MD5 of {key}")
    return RemoteFile(key, f"{base_url}/records/{record_id}/files/{key}?download=1",
                      KNOWN_MD5[key], None)


def extract(archive: Path, dest: Path, folder: str, machine: str) -> None:
    """Unpack ``archive`` into ``dest/folder/<machine>/``, refusing members that would land outside it.

    The official archives hold ``<machine>/{train,test}/...`` (the baseline's instructions unzip
    them inside ``dev_data/`` or ``eval_data/``), so they go to ``dest/folder``; an archive whose
    members already start with ``folder/<machine>/`` goes to ``dest``. Any other member (bar
    macOS's ``__MACOSX/`` metadata, which is skipped) is a :class:`DownloadError`: unpacked
    elsewhere, the clips would mix with another set's.
    """
    inside = (dest / folder / machine).resolve()
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
        root = dest.resolve() if all(n.startswith(f"{folder}/") for n in names) else dest.resolve() / folder
        for name in names:
            target = (root / name).resolve()  # a folder entry above the clips (``slider/``) is fine
            above = name.endswith("/") and target.is_relative_to(root) and inside.is_relative_to(target)
            if not (target.is_relative_to(inside) or above):
                raise DownloadError(f"{archive.name}: member {name!r} is not under {machine}/ or {folder}/{machine}/"
                                    f": unpacked, it would land outside {dest / folder / machine}")
        zf.extractall(root, names)


def md5sum(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path: Path, remote: RemoteFile) -> bool:
    """Whether ``path`` has the remote size (when known) and MD5."""
    if remote.size is not None and path.stat().st_size != remote.size:
        return False
    return md5sum(path) == remote.md5


def _fetch(remote: RemoteFile, part: Path, progress: bool) -> None:
    """Stream ``remote`` into ``part`` (resuming it if possible), then verify it."""
    start = part.stat().st_size if part.exists() else 0
    if remote.size is None or start > remote.size:  # unknown size: no safe resume
        start = 0
    if remote.size is None or start < remote.size:
        _stream(remote, part, start, progress)
    _verify(remote, part)


def _stream(remote: RemoteFile, part: Path, start: int, progress: bool) -> None:
    """GET ``remote.url`` from byte ``start`` into ``part``; a 200 answer restarts at 0."""
    headers = {"Range": f"bytes={start}-"} if start else {}
    with _open(remote.url, headers) as resp:
        if start and resp.status != 206:
            start = 0  # the server ignored Range and sends the whole file
        elif start and not resp.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
            raise DownloadError(f"{remote.url}: unexpected Content-Range "
                                f"{resp.headers.get('Content-Range')!r} for bytes {start}-")
        bar = tqdm(total=remote.size, initial=start, unit="B", unit_scale=True,
                   unit_divisor=1024, desc=remote.key, disable=not progress)
        with bar, part.open("ab" if start else "wb") as out:
            try:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, HTTPException) as err:
                raise DownloadError(f"{remote.url}: transfer broke off ({_one_line(err)}); "
                                    "run again to resume") from err


def _verify(remote: RemoteFile, part: Path) -> None:
    """Check size and MD5 of a finished ``part``; delete it and raise on a mismatch."""
    size = part.stat().st_size
    if remote.size is not None and size < remote.size:
        raise DownloadError(f"{remote.url}: transfer ended at {size} of {remote.size} bytes; "
                            "run again to resume")
    if remote.size is not None and size != remote.size:
        part.unlink()
        raise DownloadError(f"{remote.key}: size mismatch, expected {remote.size} bytes, "
                            f"got {size}; deleted")
    actual = md5sum(part)
    if actual != remote.md5:
        part.unlink()
        raise DownloadError(f"{remote.key}: MD5 mismatch, expected {remote.md5}, "
                            f"got {actual}; deleted")


def _read(url: str) -> bytes:
    """The whole body at ``url`` (a small JSON document); failures become :class:`DownloadError`."""
    with _open(url) as resp:
        try:
            return resp.read()
        except (OSError, HTTPException) as err:
            raise DownloadError(f"cannot fetch {url}: {_one_line(err)}") from err


def _open(url: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    """``urlopen`` whose failures become a one-line :class:`DownloadError` naming ``url``."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"cannot fetch {url}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise DownloadError(f"cannot fetch {url}: {_one_line(err.reason)}") from err
    except (OSError, HTTPException, ValueError) as err:
        raise DownloadError(f"cannot fetch {url}: {_one_line(err)}") from err


def _one_line(err: object) -> str:
    """``str(err)`` with whitespace collapsed, or the exception type if that is empty."""
    return " ".join(str(err).split()) or type(err).__name__
