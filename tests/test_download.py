"""asd.download against a real HTTP server on 127.0.0.1 that plays Zenodo."""
from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asd.download import KNOWN_MD5, DownloadError, download

KEY = "dev_data_slider.zip"
MEMBER = "slider/train/normal_id_00_00000000.wav"  # as in the official archives
UNPACKED = "dev_data/" + MEMBER  # where the DCASE 2020 baseline expects it
FILE_PATH = f"/files/{KEY}"
API_PATH = "/api/records/3678171"
FALLBACK_PATH = f"/records/3678171/files/{KEY}"


@dataclass
class FakeZenodo:
    """What the server serves and what it saw; tests change the fields to misbehave."""

    payload: bytes
    md5: str
    honour_range: bool = True
    api_status: int = 200
    record_json: bytes | None = None  # served by the record API instead of record()
    cut_at: int | None = None  # close the connection after this many bytes of the file
    range_shift: int = 0  # a Content-Range answer that starts this many bytes off
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""

    def record(self) -> bytes:
        """The record JSON in Zenodo's shape."""
        entry = {"key": KEY, "checksum": f"md5:{self.md5}", "size": len(self.payload),
                 "links": {"self": self.url + FILE_PATH}}
        return json.dumps({"id": 3678171, "files": [entry]}).encode()


def _handler(state: FakeZenodo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?")[0]
            state.requests.append((path, self.headers.get("Range")))
            if path == API_PATH and state.api_status == 200:
                self._send(200, state.record_json or state.record(), "application/json")
            elif path == API_PATH:
                self._send(state.api_status, b"oops", "text/plain")
            elif path in (FILE_PATH, FALLBACK_PATH):
                self._send_file()
            else:
                self._send(404, b"not found", "text/plain")

        def _send_file(self) -> None:
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if not (match and state.honour_range):
                self._send(200, state.payload, "application/zip", cut=state.cut_at)
                return
            start, size = int(match[1]), len(state.payload)
            shown = start + state.range_shift
            self._send(206, state.payload[start:], "application/zip",
                       {"Content-Range": f"bytes {shown}-{size - 1}/{size}"})

        def _send(self, code: int, body: bytes, ctype: str,
                  extra: dict[str, str] | None = None, cut: int | None = None) -> None:
            self.send_response(code)
            for name, value in {"Content-Type": ctype, "Content-Length": str(len(body)),
                                **(extra or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[:cut])
            if cut is not None:  # fewer bytes than announced, then the connection closes
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _zip_bytes(tmp_path: Path, member: str = MEMBER, folders: tuple[str, ...] = ("slider/", "slider/train/")) -> bytes:
    """A small zip holding folder entries and one 0.1 s wav written by soundfile."""
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.zeros(1600, dtype=np.float32), 16000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for folder in folders:
            zf.writestr(folder, b"")
        zf.write(wav, member)
    return buf.getvalue()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeZenodo]:
    payload = _zip_bytes(tmp_path)
    state = FakeZenodo(payload, hashlib.md5(payload).hexdigest())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _fetch(server: FakeZenodo, dest: Path) -> Path:
    return download(dest, base_url=server.url, progress=False)


def _check_unpacked(dest: Path) -> None:
    audio, sr = sf.read(dest / UNPACKED)
    assert sr == 16000 and len(audio) == 1600
    assert not (dest / KEY).exists() and not (dest / f"{KEY}.part").exists()


def test_full_download_and_unpack(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    assert download(dest, base_url=server.url, progress=True) == dest
    _check_unpacked(dest)
    assert server.requests == [(API_PATH, None), (FILE_PATH, None)]


def test_resume_from_partial_file(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    dest.mkdir()
    cut = len(server.payload) // 2
    (dest / f"{KEY}.part").write_bytes(server.payload[:cut])
    _fetch(server, dest)
    _check_unpacked(dest)
    assert (FILE_PATH, f"bytes={cut}-") in server.requests


def test_server_ignoring_range_restarts(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / f"{KEY}.part").write_bytes(b"x" * 100)  # garbage that must not survive
    server.honour_range = False
    _fetch(server, dest)
    _check_unpacked(dest)
    assert (FILE_PATH, "bytes=100-") in server.requests


def test_checksum_mismatch_raises_and_deletes(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    good = server.md5
    server.md5 = "0" * 32
    with pytest.raises(DownloadError, match=f"{KEY}.*{'0' * 32}.*{good}"):
        _fetch(server, dest)
    assert list(dest.iterdir()) == []  # no zip, no .part, no marker


def test_verified_zip_is_not_downloaded_again(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / KEY).write_bytes(server.payload)
    _fetch(server, dest)
    _check_unpacked(dest)
    assert server.requests == [(API_PATH, None)]


def test_second_call_is_a_no_op(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    _fetch(server, dest)
    seen = len(server.requests)
    assert _fetch(server, dest) == dest
    assert len(server.requests) == seen


def test_unusable_api_falls_back_to_known_md5(
    server: FakeZenodo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KNOWN_MD5, KEY, server.md5)
    server.api_status = 500
    dest = tmp_path / "data"
    with pytest.warns(UserWarning, match="HTTP 500"):
        _fetch(server, dest)
    _check_unpacked(dest)
    assert (FALLBACK_PATH, None) in server.requests


def test_a_transfer_that_breaks_off_resumes_on_the_next_run(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    server.cut_at = len(server.payload) // 2
    with pytest.raises(DownloadError, match="(transfer broke off|transfer ended at).*run again to resume"):
        _fetch(server, dest)
    assert (dest / f"{KEY}.part").stat().st_size == server.cut_at  # kept for the next run
    server.cut_at = None
    _fetch(server, dest)
    _check_unpacked(dest)
    assert server.requests[-1] == (FILE_PATH, f"bytes={len(server.payload) // 2}-")


def test_a_range_answer_for_other_bytes_is_refused(server: FakeZenodo, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / f"{KEY}.part").write_bytes(server.payload[:100])
    server.range_shift = 10
    with pytest.raises(DownloadError, match=r"unexpected Content-Range 'bytes 110-.*' for bytes 100-"):
        _fetch(server, dest)


@pytest.mark.parametrize(("record", "reason"), [
    ({"files": []}, f"{KEY} not listed"),
    ({"files": [{"key": KEY, "checksum": "sha256:ab", "size": 1, "links": {"self": "x"}}]},
     "unexpected JSON: checksum 'sha256:ab' is not MD5"),
    ({"hits": []}, "unexpected JSON: 'files'"),
])
def test_a_record_api_answer_without_a_usable_md5(
    server: FakeZenodo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: dict, reason: str
) -> None:
    server.record_json = json.dumps(record).encode()
    monkeypatch.delitem(KNOWN_MD5, KEY, raising=False)
    with pytest.raises(DownloadError, match=re.escape(f"({reason}) and no known MD5 of {KEY}")):
        _fetch(server, tmp_path / "data")
    monkeypatch.setitem(KNOWN_MD5, KEY, server.md5)  # a known MD5: warned, then verified against it
    with pytest.warns(UserWarning, match=re.escape(f"({reason}); using the known MD5 of {KEY}")):
        _fetch(server, tmp_path / "data")
    _check_unpacked(tmp_path / "data")


@pytest.mark.parametrize("member", ["../evil.wav", "pump/train/normal_id_00_00000000.wav",
                                    "eval_data/slider/train/normal_id_01_00000000.wav"])
def test_member_outside_its_set_and_machine_is_rejected(server: FakeZenodo, tmp_path: Path, member: str) -> None:
    server.payload = _zip_bytes(tmp_path, member)
    server.md5 = hashlib.md5(server.payload).hexdigest()
    with pytest.raises(DownloadError, match=f"member '{re.escape(member)}' is not under slider/ or dev_data/slider/"):
        _fetch(server, tmp_path / "data")
    assert [p.name for p in (tmp_path / "data").rglob("*.wav")] == []


def test_an_archive_that_already_holds_its_set_folder_is_unpacked_as_is(server: FakeZenodo, tmp_path: Path) -> None:
    server.payload = _zip_bytes(tmp_path, UNPACKED, folders=("dev_data/", "dev_data/slider/", "__MACOSX/x"))
    server.md5 = hashlib.md5(server.payload).hexdigest()
    _check_unpacked(_fetch(server, tmp_path / "data"))
    assert not (tmp_path / "data" / "dev_data" / "dev_data").exists() and not (tmp_path / "data" / "__MACOSX").exists()


@pytest.mark.parametrize(("which", "machine", "match"), [
    ("test", "slider", "unknown set 'test'"),
    ("dev", "car", "unknown machine 'car'"),
    ("eval", "Slider", "unknown machine 'Slider'"),
])
def test_bad_arguments(tmp_path: Path, which: str, machine: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        download(tmp_path, which, machine, base_url="http://127.0.0.1:9", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError) as info:
        download(tmp_path / "data", base_url=f"http://127.0.0.1:{port}", progress=False)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/api/records/3678171" in message and "\n" not in message


@pytest.fixture
def records(tmp_path: Path) -> Iterator[tuple[str, dict]]:
    """A server with Zenodo's record API for several records: ``{record id: {key: payload}}``."""
    files: dict[int, dict[str, bytes]] = {}
    md5s: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if m := re.fullmatch(r"/api/records/(\d+)", path):
                entries = [{"key": k, "checksum": f"md5:{md5s.get(k) or hashlib.md5(v).hexdigest()}",
                            "size": len(v), "links": {"self": f"{url}/files/{k}"}}
                           for k, v in files.get(int(m[1]), {}).items()]
                body, code = json.dumps({"files": entries}).encode(), 200 if entries else 404
            elif m := re.fullmatch(r"/files/(.+)", path):
                found = [v for rec in files.values() for k, v in rec.items() if k == m[1]]
                body, code = (found[0], 200) if found else (b"", 404)
            else:
                body, code = b"", 404
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield url, {"files": files, "md5s": md5s}
    httpd.shutdown()
    httpd.server_close()
    thread.join()


GT_LINES = b"slider\nid_01_00000000.wav,normal_id_01_00000000.wav,0\n"


def test_eval_set_comes_with_its_ground_truth(records, tmp_path: Path) -> None:
    url, state = records
    state["files"][3841772] = {"eval_data_test_slider.zip": _zip_bytes(tmp_path, "slider/test/id_01_00000000.wav")}
    state["files"][3951620] = {"eval_data_list.csv": GT_LINES}
    dest = tmp_path / "data"
    assert download(dest, "eval", base_url=url, progress=False) == dest
    assert (dest / "eval_data/slider/test/id_01_00000000.wav").is_file()
    assert (dest / "eval_data_list.csv").read_bytes() == GT_LINES
    from asd.data import find_ground_truth, list_clips, read_ground_truth

    labels = read_ground_truth(find_ground_truth(dest / "eval_data"), "slider")
    assert [c.label for c in list_clips(dest / "eval_data", "slider", "test", labels=labels)] == [0]


def test_ground_truth_checksum_mismatch_fails(records, tmp_path: Path) -> None:
    url, state = records
    state["files"][3841772] = {"eval_data_test_slider.zip": _zip_bytes(tmp_path, "slider/test/id_01_00000000.wav")}
    state["files"][3951620] = {"eval_data_list.csv": GT_LINES}
    state["md5s"]["eval_data_list.csv"] = "0" * 32
    with pytest.raises(DownloadError, match="eval_data_list.csv: MD5 mismatch"):
        download(tmp_path / "data", "eval", base_url=url, progress=False)
    assert not (tmp_path / "data" / "eval_data_list.csv").exists()


def test_asd_download_set_additional_unpacks_the_eval_ids_training_clips(records, tmp_path: Path, monkeypatch,
                                                                         capsys) -> None:
    """`asd download DEST --set additional`: the additional-training record's archive, unpacked beside the
    eval test clips as eval_data/<machine>/train."""
    import functools

    import asd.download
    from asd.cli import main

    url, state = records
    archive = _zip_bytes(tmp_path, "slider/train/normal_id_01_00000000.wav")
    state["files"][3727685] = {"eval_data_train_slider.zip": archive}
    monkeypatch.setattr(asd.download, "download", functools.partial(download, base_url=url, progress=False))
    dest = tmp_path / "dcase"
    assert main(["download", str(dest), "--set", "additional"]) == 0
    assert capsys.readouterr().out == f"unpacked into {dest}\n"
    assert [p.relative_to(dest).as_posix() for p in dest.rglob("*.wav")] == [
        "eval_data/slider/train/normal_id_01_00000000.wav"]
    assert not (dest / "eval_data_list.csv").exists()  # the labels come with the eval test set only
