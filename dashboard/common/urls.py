"""URLs and paths, said once: what scheme a source uses, where a manifest's relative URL points, the local path
of a file:// URL, a safe file name for the cache, and the redacted form shown to people (presigned URLs carry
their signature in the query string)."""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from dashboard.errors import ModelSourceError

REMOTE_SCHEMES = ("http", "https", "s3", "gs")


def redact(url: str) -> str:
    """The URL without query string, fragment or user:password (presigned URLs carry secrets there)."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (or a Windows drive letter)
        return url.split("?", 1)[0]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def scheme_of(url: str) -> str:
    """'http', 'https', 's3', 'gs', 'file' or '' for a plain path."""
    scheme = urlsplit(url).scheme.lower()
    return "" if len(scheme) <= 1 else scheme


def is_remote(url: str) -> bool:
    """True for URLs fetched over the network."""
    return scheme_of(url) in REMOTE_SCHEMES


def resolve(base: str, ref: str) -> str:
    """ref as written in the manifest at base: relative refs resolve against the manifest's folder."""
    ref_scheme = scheme_of(ref)
    if ref_scheme:
        if is_remote(base) and ref_scheme == "file":
            raise ModelSourceError(
                f"manifest {redact(base)} refers to a local file ({redact(ref)}); "
                "a remote manifest may only point to remote files or relative names"
            )
        return ref
    base_scheme = scheme_of(base)
    if base_scheme in ("http", "https"):
        return urljoin(base, ref)
    if base_scheme in ("s3", "gs"):
        parts = urlsplit(base)
        if ref.startswith("/"):
            raise ModelSourceError(
                f"manifest {redact(base)} refers to an absolute path {ref!r}; "
                "inside a bucket use names relative to the manifest"
            )
        key = posixpath.normpath(posixpath.join(posixpath.dirname(parts.path), ref))
        return urlunsplit((parts.scheme, parts.netloc, key, "", ""))
    if base_scheme == "file":
        parts = urlsplit(base)
        path = posixpath.normpath(posixpath.join(posixpath.dirname(unquote(parts.path)), ref))
        return urlunsplit(("file", parts.netloc, path, "", ""))
    return str(Path(base).expanduser().parent / Path(ref).expanduser())


def local_path(url: str) -> Path | None:
    """The filesystem path of a plain path or file:// URL, else None."""
    scheme = scheme_of(url)
    if scheme == "file":
        return Path(unquote(urlsplit(url).path))
    if scheme == "":
        return Path(url).expanduser()
    return None


def file_name(url: str) -> str:
    """The last path segment of url, for naming the cached copy."""
    path = local_path(url)
    name = path.name if path is not None else posixpath.basename(unquote(urlsplit(url).path))
    name = "".join(c for c in name if c.isalnum() or c in "._-")
    return name.lstrip(".") or "download"
