"""s3:// and gs:// objects through the cloud SDKs: streamed reads and uploads, errors that say what to check.

Credentials come the way the SDKs read them (AWS_* variables, GOOGLE_APPLICATION_CREDENTIALS, instance roles),
or from the same names in Streamlit secrets via Settings. No key, token or signature ever appears in a message.
The SDKs are imported only when a bucket URL is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dashboard.common.files import CHUNK, capped, format_bytes
from dashboard.config import Settings
from dashboard.errors import IntegrityError, ModelSourceError, ObjectMissingError, scrub_library_logs

S3_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "AccountProblem",
    "403",
    "401",
}
S3_MISSING = {"NoSuchKey", "404", "NotFound"}
# SDK debug logs carry request headers (SigV4 Authorization, tokens): redact them; botocore.auth logs only signing
scrub_library_logs(
    "botocore.endpoint",
    "botocore.httpsession",
    "botocore.awsrequest",
    "botocore.parsers",
    "botocore.hooks",
    "botocore.retryhandler",
    "botocore.regions",
    "botocore.credentials",
    "google.auth.transport.requests",
    "google.cloud.storage",
    "google.resumable_media",
)
scrub_library_logs("botocore.auth", drop=True)


def split(url: str) -> tuple[str, str, str]:
    """(scheme, bucket, key) of s3://bucket/key or gs://bucket/key."""
    parts = urlsplit(url)
    bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
    if not bucket or not key:
        raise ModelSourceError(
            f"{parts.scheme}://{bucket}/{key} is not a bucket object URL; use {parts.scheme}://bucket/path/to/file"
        )
    return parts.scheme, bucket, key


def stream(url: str, settings: Settings, max_bytes: int) -> Iterator[tuple[bytes, int, int | None]]:
    """(block, bytes so far, total) for each block of the object; every failure a ModelSourceError."""
    scheme, bucket, key = split(url)
    if scheme == "s3":
        yield from _s3_stream(url, bucket, key, settings, max_bytes)
    else:
        yield from _gs_stream(url, bucket, key, settings, max_bytes)


def read_optional(url: str, settings: Settings, max_bytes: int) -> bytes | None:
    """The object's bytes, or None when it does not exist (for a manifest that is not published yet)."""
    try:
        return b"".join(block for block, _, _ in stream(url, settings, max_bytes))
    except ObjectMissingError:
        return None


def upload(url: str, source: Path | bytes, settings: Settings, content_type: str) -> None:
    """Write the object (a whole PUT: readers see the old object or the new one, never a part)."""
    scheme, bucket, key = split(url)
    data = source if isinstance(source, bytes) else None
    try:
        if scheme == "s3":
            client = _s3_client(settings)
            if data is not None:
                client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
            else:
                client.upload_file(str(source), bucket, key, ExtraArgs={"ContentType": content_type})
        else:
            blob = _gs_client(settings).bucket(bucket).blob(key)
            if data is not None:
                blob.upload_from_string(data, content_type=content_type, timeout=settings.read_timeout)
            else:
                blob.upload_from_filename(str(source), content_type=content_type, timeout=settings.read_timeout)
    except ModelSourceError:
        raise
    except Exception as exc:
        raise _error(url, exc, settings, writing=True) from exc


def read_tagged(url: str, settings: Settings, max_bytes: int) -> tuple[bytes | None, str | None]:
    """(the object's bytes, its tag: S3 ETag or GCS generation), or (None, None) when it does not exist yet: the
    first half of a compare-and-swap with `upload_if`."""
    scheme, bucket, key = split(url)
    try:
        if scheme == "s3":
            response = _s3_client(settings).get_object(Bucket=bucket, Key=key)
            data = response["Body"].read(max_bytes + 1)
            tag = str(response["ETag"])
        else:
            blob = _gs_client(settings).bucket(bucket).blob(key)
            data = blob.download_as_bytes(timeout=(settings.connect_timeout, settings.read_timeout))
            tag = str(blob.generation)
    except Exception as exc:
        error = exc if isinstance(exc, ModelSourceError) else _error(url, exc, settings)
        if isinstance(error, ObjectMissingError):
            return None, None
        raise error from exc
    if len(data) > max_bytes:
        raise ModelSourceError(f"{url} is over {format_bytes(max_bytes)}; is it the right file?")
    return data, tag


def upload_if(url: str, data: bytes, settings: Settings, content_type: str, tag: str | None) -> bool:
    """Write the object only if it is still as read (tag from `read_tagged`; None: only if it does not exist);
    False when another writer changed it first (read again and retry)."""
    scheme, bucket, key = split(url)
    try:
        if scheme == "s3":
            condition = {"IfMatch": tag} if tag is not None else {"IfNoneMatch": "*"}
            _s3_client(settings).put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, **condition)
        else:
            blob = _gs_client(settings).bucket(bucket).blob(key)
            blob.upload_from_string(
                data,
                content_type=content_type,
                if_generation_match=int(tag) if tag is not None else 0,
                timeout=settings.read_timeout,
            )
    except Exception as exc:
        response = getattr(exc, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        status = getattr(exc, "code", None)
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409") or status == 412:
            return False
        raise _error(url, exc, settings, writing=True) from exc
    return True


def _s3_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"max_attempts": settings.retries + 1, "mode": "standard"},
    )
    options: dict[str, Any] = {"region_name": settings.aws_region or "us-east-1"}
    if settings.aws_endpoint_url:
        options["endpoint_url"] = settings.aws_endpoint_url
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        options.update(
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            aws_session_token=settings.aws_session_token,
        )
    return boto3.session.Session().client("s3", config=config, **options)


def _s3_stream(url: str, bucket: str, key: str, settings: Settings, max_bytes: int):
    from botocore.exceptions import IncompleteReadError, ReadTimeoutError, ResponseStreamingError

    try:
        response = _s3_client(settings).get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise _error(url, exc, settings) from exc
    total = int(response.get("ContentLength") or 0) or None
    body = response["Body"]
    try:
        yield from capped(body.iter_chunks(CHUNK), url, total, max_bytes)
    except (IncompleteReadError, ResponseStreamingError) as exc:
        raise IntegrityError(f"download of {url} was cut off before the end; try again") from exc
    except ReadTimeoutError as exc:
        raise ModelSourceError(
            f"{url} is unreachable: no answer within {settings.read_timeout:g} s "
            "(MODEL_READ_TIMEOUT); check AWS_ENDPOINT_URL and the network"
        ) from exc
    finally:
        body.close()


def _gs_client(settings: Settings) -> Any:
    from google.cloud import storage

    if settings.storage_emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=settings.gcp_project or "local", credentials=AnonymousCredentials())
    return storage.Client(project=settings.gcp_project) if settings.gcp_project else storage.Client()


def _gs_bucket_exists(client: Any, bucket: str) -> bool:
    try:
        return bool(client.bucket(bucket).exists())
    except Exception:  # cannot tell: report the object as missing
        return True


def _gs_stream(url: str, bucket: str, key: str, settings: Settings, max_bytes: int):
    client = None
    try:
        client = _gs_client(settings)
        blob = client.bucket(bucket).blob(key)
        blob.reload(timeout=(settings.connect_timeout, settings.read_timeout))
    except Exception as exc:
        if type(exc).__name__ == "NotFound" and client is not None and not _gs_bucket_exists(client, bucket):
            raise ModelSourceError(f"the bucket of {url} does not exist: check the bucket name") from exc
        raise _error(url, exc, settings) from exc
    total = blob.size
    done = 0
    try:
        with blob.open(
            "rb", chunk_size=CHUNK, raw_download=True, timeout=(settings.connect_timeout, settings.read_timeout)
        ) as reader:
            for block, done, _ in capped(iter(lambda: reader.read(CHUNK), b""), url, total, max_bytes):
                yield block, done, total
    except ModelSourceError:
        raise
    except Exception as exc:
        raise _error(url, exc, settings) from exc
    if total is not None and done != total:
        raise IntegrityError(
            f"download of {url} was cut off after {format_bytes(done)} of {format_bytes(total)}; try again"
        )


def _error(url: str, exc: BaseException, settings: Settings, writing: bool = False) -> ModelSourceError:
    """One clear, secret-free message for an SDK failure."""
    name = type(exc).__name__
    scheme = url.split(":", 1)[0]
    code, status = "", 0
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    elif isinstance(getattr(exc, "code", None), int):  # google.api_core errors carry the HTTP status as .code
        status = exc.code
    check = (
        "check the AWS_* config vars and the bucket policy"
        if scheme == "s3"
        else "check GOOGLE_APPLICATION_CREDENTIALS and the bucket's IAM permissions"
    )
    verb = "write" if writing else "read"
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
        return ModelSourceError(f"no credentials to {verb} {url}: {check}")
    if code in S3_DENIED or name in ("Forbidden", "Unauthorized", "RefreshError") or status in (401, 403):
        return ModelSourceError(f"access denied for {url}: {check}")
    if code == "NoSuchBucket":
        return ModelSourceError(
            f"the bucket of {url} does not exist: check the bucket name"
            + (" and AWS_ENDPOINT_URL" if scheme == "s3" else "")
        )
    if code in S3_MISSING or name == "NotFound" or status == 404:
        return ObjectMissingError(f"{url} was not found; check the key in the manifest or the URL")
    if name in (
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ConnectionError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "TransportError",
        "ServiceUnavailable",
        "ReadTimeoutError",
        "Timeout",
    ):
        where = "AWS_ENDPOINT_URL and the network" if scheme == "s3" else "the network (and STORAGE_EMULATOR_HOST)"
        return ModelSourceError(f"{url} is unreachable ({name}); check {where}")
    if status >= 500:
        return ModelSourceError(
            f"{url} is unreachable: the storage service answered HTTP {status} "
            f"(tried {settings.retries + 1} times); try again later"
        )
    return ModelSourceError(f"cannot {verb} {url} ({name}{' ' + code if code else ''}); {check}")
