"""The EmoDB downloader against a local HTTP server serving synthetic zips (no internet needed)."""
from __future__ import annotations

import io
import itertools
import socket
import threading
import time
import wave
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cloak import download
from cloak.download import DownloadError, download_emodb
from cloak.emodb import EMOTION_LETTERS, N_FILES, SPEAKERS, TEXTS, DatasetError, checksum, verify


class Server:
    """Serves ``routes[path] = (status, body)`` on 127.0.0.1 and counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                status, body = server.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"


@pytest.fixture
def server():
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _tiny_wav(i: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(i.to_bytes(2, "little") * 8)
    return buf.getvalue()


@pytest.fixture(scope="session")
def fake_emodb(tmp_path_factory) -> tuple[Path, str]:
    """535 tiny wav files with valid EmoDB names (official layout) and their checksum."""
    root = tmp_path_factory.mktemp("fake_emodb")
    (root / "wav").mkdir()
    names = (f"{s}{t}{e}a.wav" for s, t, e in itertools.product(SPEAKERS, TEXTS, EMOTION_LETTERS))
    for i, name in enumerate(itertools.islice(names, N_FILES)):
        (root / "wav" / name).write_bytes(_tiny_wav(i))
    for folder in ("silb", "labsilb", "lablaut"):
        (root / folder).mkdir()
        (root / folder / "03a01Fa.txt").write_text(folder)
    (root / "erkennung.txt").write_text("erkennung")
    (root / "erklaerung.txt").write_text("erklaerung")
    return root, checksum(root)


def make_zip(root: Path, prefix: str = "", n_wav: int | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """Zip ``root`` (optionally under ``prefix``, keeping only ``n_wav`` wav files) plus ``extra`` members."""
    wavs = sorted((root / "wav").glob("*.wav"))
    keep = set(wavs[:n_wav] if n_wav is not None else wavs)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file() and (p.suffix != ".wav" or p in keep):
                zf.write(p, prefix + p.relative_to(root).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_download_unpacks_and_verifies(server, fake_emodb, tmp_path, capsys):
    root, sha = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root))
    dest = tmp_path / "emodb"
    assert download_emodb(dest, url=server.url("/emodb.zip"), progress=False, expected_sha256=sha) == dest
    verify(dest, sha)
    assert {p.name for p in dest.iterdir()} == {"wav", "silb", "labsilb", "lablaut", "erkennung.txt", "erklaerung.txt"}
    assert list(tmp_path.iterdir()) == [dest]  # no temp files left beside dest
    assert capsys.readouterr().err == ""


def test_single_top_level_folder_and_progress_bar(server, fake_emodb, tmp_path, capsys):
    root, sha = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root, prefix="EmoDB/"))
    dest = tmp_path / "emodb"
    download_emodb(dest, url=server.url("/emodb.zip"), progress=True, expected_sha256=sha)
    verify(dest, sha)
    assert (dest / "erkennung.txt").is_file()
    assert list(tmp_path.iterdir()) == [dest]
    assert "EmoDB" in capsys.readouterr().err


def test_empty_dest_folder_is_filled(server, fake_emodb, tmp_path):
    root, sha = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root))
    dest = tmp_path / "emodb"
    dest.mkdir()
    download_emodb(dest, url=server.url("/emodb.zip"), progress=False, expected_sha256=sha)
    verify(dest, sha)


def test_second_call_does_not_download(server, fake_emodb, tmp_path):
    root, sha = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root))
    dest = tmp_path / "emodb"
    download_emodb(dest, url=server.url("/emodb.zip"), progress=False, expected_sha256=sha)
    download_emodb(dest, url=server.url("/emodb.zip"), progress=False, expected_sha256=sha)
    assert server.hits == {"/emodb.zip": 1}


def test_http_404(server, tmp_path):
    dest = tmp_path / "emodb"
    with pytest.raises(DownloadError, match="HTTP error 404"):
        download_emodb(dest, url=server.url("/missing.zip"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_body(server, tmp_path):
    server.routes["/emodb.zip"] = (200, b"<html>this is not a zip</html>" * 100)
    with pytest.raises(DownloadError, match="not a valid zip file"):
        download_emodb(tmp_path / "emodb", url=server.url("/emodb.zip"), progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("evil", ["../evil", "wav/../../evil", "/tmp/evil", "..\\evil"])
def test_path_traversal_is_rejected(server, fake_emodb, tmp_path, evil):
    root, sha = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root, extra={evil: b"pwned"}))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match="unsafe path"):
        download_emodb(work / "emodb", url=server.url("/emodb.zip"), progress=False, expected_sha256=sha)
    assert list(work.iterdir()) == []
    assert not (tmp_path / "evil").exists()


def test_too_few_files_fail_verification(server, fake_emodb, tmp_path):
    root, sha = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root, n_wav=100))
    dest = tmp_path / "emodb"
    with pytest.raises(DownloadError, match=f"100 EmoDB wav files, expected {N_FILES}") as info:
        download_emodb(dest, url=server.url("/emodb.zip"), progress=False, expected_sha256=sha)
    assert isinstance(info.value, DatasetError)
    assert "\n" not in str(info.value)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_wrong_checksum_fails_verification(server, fake_emodb, tmp_path):
    root, _ = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root))
    with pytest.raises(DownloadError, match="checksum"):
        download_emodb(tmp_path / "emodb", url=server.url("/emodb.zip"), progress=False, expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server(tmp_path):
    start = time.monotonic()
    with pytest.raises(DownloadError, match="cannot reach the server"):
        download_emodb(tmp_path / "emodb", url=f"http://127.0.0.1:{_free_port()}/emodb.zip", progress=False)
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []


def test_silent_server_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT_S", 0.3)
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/emodb.zip"
        with pytest.raises(DownloadError, match="no answer from the server within 0.3 s"):
            download_emodb(tmp_path / "emodb", url=url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_invalid_url(tmp_path):
    with pytest.raises(DownloadError, match="not a valid URL"):
        download_emodb(tmp_path / "emodb", url="emodb.bilderbar.info/download.zip", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_non_emodb_dest_is_refused_and_untouched(server, fake_emodb, tmp_path):
    root, sha = fake_emodb
    server.routes["/emodb.zip"] = (200, make_zip(root))
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    with pytest.raises(DownloadError, match="refusing to overwrite"):
        download_emodb(dest, url=server.url("/emodb.zip"), progress=False, expected_sha256=sha)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert (dest / "notes.txt").read_text() == "keep me"
    assert server.hits == {}
    assert list(tmp_path.iterdir()) == [dest]
