"""Download and unpack the official EmoDB zip: stream to a temp file, unpack beside ``dest``, verify, rename.

Nothing appears at ``dest`` unless the 535 wav files match :data:`cloak.emodb.WAV_SHA256`;
temp files are removed on any failure and an existing user folder is never touched.
"""
from __future__ import annotations

import http.client
import logging
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from cloak.emodb import WAV_SHA256, DatasetError, verify

EMODB_URL = "http://emodb.bilderbar.info/download/download.zip"
TIMEOUT_S = 30.0  # per socket operation (connect, each read), not for the whole transfer
CHUNK_BYTES = 1 << 16

log = logging.getLogger(__name__)


class DownloadError(DatasetError):
    """The EmoDB download or unpacking failed; ``str()`` is one line a user can read."""


def download_emodb(
    dest: str | os.PathLike,
    url: str = EMODB_URL,
    progress: bool = True,
    expected_sha256: str = WAV_SHA256,
) -> Path:
    """Download EmoDB from ``url`` into the new (or empty) folder ``dest``; return ``dest``.

    Returns at once if ``dest`` already holds a verified EmoDB; refuses any other non-empty ``dest``.
    """
    dest = Path(dest).expanduser().resolve()
    if _holds_emodb(dest, expected_sha256):
        log.info("%s: EmoDB already present and verified", dest)
        return dest
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise DownloadError(f"{dest}: exists and is not a complete EmoDB; refusing to overwrite it (choose a new or empty folder)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".zip.part", dir=dest.parent)
    os.close(fd)
    zip_path = Path(name)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        log.info("downloading %s", url)
        _fetch(url, zip_path, progress)
        root = _unpack(zip_path, tmp_dir, url)
        try:
            verify(root, expected_sha256)
        except DatasetError as e:
            reason = str(e).removeprefix(f"{root}: ")
            raise DownloadError(f"{url}: the download is not the official EmoDB ({reason})") from e
        if dest.is_dir():
            dest.rmdir()  # only ever empty here; rename onto a directory is not portable
        os.replace(root, dest)
    finally:
        zip_path.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
    log.info("EmoDB ready at %s", dest)
    return dest


def _holds_emodb(path: Path, expected_sha256: str) -> bool:
    try:
        verify(path, expected_sha256)
    except DatasetError:
        return False
    return True


def _fetch(url: str, out: Path, progress: bool) -> None:
    """Stream ``url`` into ``out`` in chunks, with a byte progress bar on stderr."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "cloak-emodb-downloader"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(out, "wb") as f:
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="EmoDB",
                      disable=not progress, file=sys.stderr) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    f.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        e.close()
        raise DownloadError(f"{url}: HTTP error {e.code} ({e.reason})") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise DownloadError(f"{url}: no answer from the server within {TIMEOUT_S:g} s") from e
        raise DownloadError(f"{url}: cannot reach the server ({e.reason})") from e
    except TimeoutError as e:
        raise DownloadError(f"{url}: no answer from the server within {TIMEOUT_S:g} s") from e
    except (http.client.HTTPException, ConnectionError) as e:
        raise DownloadError(f"{url}: the download was interrupted ({type(e).__name__})") from e
    except ValueError as e:  # urllib's "unknown url type"
        raise DownloadError(f"{url}: not a valid URL ({e})") from e


def _unpack(zip_path: Path, out: Path, url: str) -> Path:
    """Extract into ``out`` after checking every member; return the folder holding ``wav/``."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for name in zf.namelist():
                if not _is_safe_member(name):
                    raise DownloadError(f"{url}: unsafe path in the zip ({name!r}); refusing to unpack it")
            zf.extractall(out)
    except (zipfile.BadZipFile, EOFError) as e:
        raise DownloadError(f"{url}: the download is not a valid zip file ({e})") from e
    entries = list(out.iterdir())
    if not (out / "wav").is_dir() and len(entries) == 1 and (entries[0] / "wav").is_dir():
        return entries[0]  # a single top-level folder wrapping the official layout
    return out


def _is_safe_member(name: str) -> bool:
    """False for absolute paths, drive letters and ``..`` components (zip-slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    return not path.is_absolute() and ".." not in path.parts and ":" not in name
