"""Downloads the way pip and huggingface_hub do them: streamed, hashed, atomic, cached, redacted.

Steps of `fetch`:
1. a local path or file:// URL is used in place (sha256 still checked);
2. a pinned file (sha256 known) already in the cache is returned without touching the network;
3. otherwise, under a per-entry file lock, stream the body to a temp file beside the target,
   hashing and counting while writing, then fsync and os.replace it into place;
4. on any failure the temp file is deleted, so the cache never holds a partial or unverified file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dashboard.common.files import CHUNK, atomic_write, before, capped, format_bytes, locked, too_large
from dashboard.common.urls import file_name, local_path, redact, scheme_of
from dashboard.config import Settings
from dashboard.errors import IntegrityError, ModelSourceError, ObjectMissingError, scrub_library_logs

ProgressFn = Callable[[int, "int | None"], None]
SMALL_FILE_SECONDS = 60.0  # the overall deadline for a manifest or schema (MODEL_DOWNLOAD_TIMEOUT if lower)
SMALL_FILE_CAP = 16 * 1024 * 1024
# urllib3 logs each retry with the full URL, query string (a presigned signature) included
scrub_library_logs("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "requests")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def revision(url: str, settings: Settings) -> str:
    """What a file looks like now without downloading it: ETag / Last-Modified / size (HTTP), mtime and size
    (a path); "" when that cannot be told (buckets, an unreachable server: the load reports those)."""
    path = local_path(url)
    if path is not None:
        try:
            stat = path.stat()
        except OSError:
            return ""
        return f"{stat.st_mtime_ns}:{stat.st_size}"
    if scheme_of(url) not in ("http", "https"):
        return ""
    try:  # one HEAD, not retried: a failure here is reported by the download that follows
        with requests.Session() as session:
            response = session.head(
                url, allow_redirects=True, timeout=(settings.connect_timeout, settings.read_timeout)
            )
    except requests.exceptions.RequestException:
        return ""
    if response.status_code >= 400:
        return ""
    return "|".join(response.headers.get(h, "") for h in ("ETag", "Last-Modified", "Content-Length"))


def read_bytes(url: str, settings: Settings, max_bytes: int = SMALL_FILE_CAP) -> bytes:
    """A small file (manifest, schema, architecture JSON) read whole into memory."""
    path = local_path(url)
    if path is not None:
        _check_local(path, url, max_bytes)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ModelSourceError(
                f"cannot read {redact(url)}: {exc.strerror}; check the path and its permissions"
            ) from exc
    chunks = []
    for block, _, _ in _stream(url, settings, max_bytes, min(settings.download_timeout, SMALL_FILE_SECONDS)):
        chunks.append(block)
    return b"".join(chunks)


def fetch(url: str, settings: Settings, sha256: str | None = None, progress: ProgressFn | None = None) -> Path:
    """A verified local copy of url (see the module docstring for the steps)."""
    sha256 = sha256.lower() if sha256 else None
    path = local_path(url)
    if path is not None:
        _check_local(path, url, settings.max_download_bytes)
        if sha256:
            _verify(sha256_of(path), sha256, url, "the file on disk")
        return path
    if sha256:
        entry = settings.cache_dir / "sha256" / sha256
    else:
        entry = settings.cache_dir / "unpinned" / hashlib.sha256(url.encode()).hexdigest()[:40]
    target = entry / file_name(url)
    if sha256 and _cached(target, sha256):
        return target
    with contextlib.ExitStack() as stack:
        try:
            entry.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _cache_error(exc, settings.cache_dir) from exc
        try:
            stack.enter_context(locked(entry / ".lock"))
        except OSError as exc:
            raise _cache_error(exc, entry) from exc
        if not (sha256 and _cached(target, sha256)):  # else another process finished it while we waited
            _download(url, target, settings, sha256, progress)
    return target


def _cached(target: Path, sha256: str) -> bool:
    """True when the cache holds the pinned file, checked again now (about 0.5 s per 200 MB): a file swapped or
    damaged in the cache since it was verified is removed and downloaded again, never served."""
    if not target.is_file():
        return False
    if sha256_of(target) == sha256:
        return True
    target.unlink(missing_ok=True)
    return False


def _download(url: str, target: Path, settings: Settings, sha256: str | None, progress: ProgressFn | None) -> None:
    """Stream url into target through the atomic writer, hashing while writing; verified before the rename."""
    digest = hashlib.sha256()
    try:
        with atomic_write(target) as handle:
            for block, done, total in _stream(url, settings, settings.max_download_bytes):
                handle.write(block)
                digest.update(block)
                if progress is not None:
                    progress(done, total)
            if sha256:
                _verify(digest.hexdigest(), sha256, url, "the download")
    except OSError as exc:  # the cache disk: full, read-only, gone
        raise _cache_error(exc, target.parent) from exc


def _stream(
    url: str, settings: Settings, max_bytes: int, seconds: float | None = None
) -> Iterator[tuple[bytes, int, int | None]]:
    """(block, bytes so far, total or None) for each block of url's body; every failure a ModelSourceError."""
    scheme = scheme_of(url)
    shown = redact(url)
    if scheme in ("s3", "gs"):
        from dashboard.store import buckets

        yield from buckets.stream(url, settings, max_bytes)
        return
    if scheme not in ("http", "https"):
        raise ModelSourceError(
            f"unsupported URL scheme {scheme!r} in {shown}; use https://, http://, file:// or a plain path"
        )
    started = time.monotonic()
    try:
        with _session(settings) as session:
            response = session.get(
                url,
                stream=True,
                timeout=(settings.connect_timeout, settings.read_timeout),
                headers={"Accept-Encoding": "identity"},
            )
            with response:
                _check_status(response, url, settings)
                total = _content_length(response)
                done = 0
                blocks = before(started, seconds or settings.download_timeout, _body(response), shown)
                for block, done, _ in capped(blocks, shown, total, max_bytes):
                    yield block, done, total
                if total is not None and done != total:
                    raise IntegrityError(
                        f"download of {shown} was cut off after {format_bytes(done)} of "
                        f"{format_bytes(total)}; try again, and check the server if it keeps happening"
                    )
    except requests.exceptions.ChunkedEncodingError as exc:
        raise IntegrityError(
            f"download of {shown} was cut off before the end; try again, and check the server if it keeps happening"
        ) from exc
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in str(exc):
            raise ModelSourceError(
                f"{shown} is unreachable: no answer within {settings.read_timeout:g} s "
                "(MODEL_READ_TIMEOUT); check that the server is up"
            ) from exc
        raise ModelSourceError(
            f"{shown} is unreachable ({_connection_reason(exc)}); check the URL and that the server is up"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise ModelSourceError(f"{shown} is unreachable ({type(exc).__name__}); check the URL") from exc


def _body(response: requests.Response) -> Iterator[bytes]:
    """The raw body, one socket read at a time (so each block is bounded by the read timeout), with urllib3's
    errors as the requests errors _stream words."""
    try:
        while block := response.raw.read1(CHUNK):
            yield block
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(str(exc)) from exc
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(str(exc)) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise requests.exceptions.ConnectionError(str(exc)) from exc


def _session(settings: Settings) -> requests.Session:
    retry = Retry(
        total=settings.retries,
        connect=settings.retries,
        read=0,
        other=0,
        status=settings.retries,
        backoff_factor=0.2,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"),
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    session.trust_env = True
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _check_status(response: requests.Response, url: str, settings: Settings) -> None:
    code = response.status_code
    shown = redact(url)
    if code < 400:
        return
    if code == 404:
        raise ObjectMissingError(f"{shown} was not found (HTTP 404); check the URL or the manifest entry")
    if code in (401, 403):
        raise ModelSourceError(
            f"access to {shown} was denied (HTTP {code}); a presigned link may have expired, "
            "or the server needs credentials: generate a fresh link or check access"
        )
    if code >= 500:
        raise ModelSourceError(
            f"{shown} is unreachable: the server answered HTTP {code} "
            f"(tried {settings.retries + 1} times); try again later"
        )
    raise ModelSourceError(f"{shown} answered HTTP {code}; check the URL")


def _content_length(response: requests.Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    if (
        "Name or service not known" in text
        or "nodename nor servname" in text
        or "NameResolution" in text
        or "Temporary failure in name resolution" in text
    ):
        return "host name not found"
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "connection timed out"
    return "connection failed"


def _check_local(path: Path, url: str, max_bytes: int) -> None:
    if not path.is_file():
        raise ModelSourceError(f"{redact(url)} does not exist or is not a file; check the path")
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelSourceError(too_large(redact(url), size, max_bytes, "MODEL_MAX_BYTES"))


def _verify(actual: str, expected: str, url: str, what: str) -> None:
    if actual != expected:
        raise IntegrityError(
            f"sha256 of {redact(url)} is {actual[:12]}…, expected {expected[:12]}…; "
            f"{what} is not the published file: republish it or fix the sha256 in the manifest"
        )


def _cache_error(exc: OSError, folder: Path) -> ModelSourceError:
    if exc.errno == errno.ENOSPC:
        return ModelSourceError(
            f"no space left in the cache folder {folder}; free some space "
            "or set MODEL_CACHE_DIR to a folder on a larger disk"
        )
    return ModelSourceError(
        f"the cache folder {folder} is not writable ({exc.strerror}); set MODEL_CACHE_DIR to a writable folder"
    )
