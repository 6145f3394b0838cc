"""Typed errors with user-facing messages, and redaction of secrets in any text."""

from __future__ import annotations

import logging
import re
import traceback

# Query strings of presigned URLs (X-Amz-Signature, X-Goog-Signature, sig=...) and user:password@.
_URL_QUERY = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>?#]*)[?#][^\s'\"<>]*")
# user:password@ up to the last @ before the host (a password may itself hold an @)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"<>]*@")
# SigV4 Authorization headers and security tokens in SDK debug logs
_AUTH_FIELDS = re.compile(
    r"(?P<name>Signature|Credential|X-Amz-Security-Token|x-amz-security-token|"
    r"X-Goog-Signature|X-Goog-Credential)(?P<sep>['\"]?\s*[=:]\s*b?['\"]?)[^,\s'\"&]+"
)
# any query string on a path without a scheme (urllib3 and servers log "GET /path?key=... HTTP/1.1")
_LOOSE_QUERY = re.compile(r"(?P<head>[^\s'\"<>?#=]+)\?[^\s'\"<>]*=[^\s'\"<>]*")


class DashboardError(Exception):
    """Base of every error whose message is meant for the person using the dashboard."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))

    @property
    def message(self) -> str:
        """The user-facing message (already redacted)."""
        return str(self)


class ConfigError(DashboardError):
    """A configuration variable has a value that cannot be used."""


class ManifestError(DashboardError):
    """A manifest (or the set of sources together) is malformed."""


class VersionError(DashboardError):
    """No version can be chosen (for example: no versions at all)."""


class UnknownModelError(VersionError):
    """A model was asked for by a name the catalog does not have (or does not show to this person)."""


class ModelSourceError(DashboardError):
    """A file could not be downloaded: unreachable, not found, too large, cache unusable."""


class ObjectMissingError(ModelSourceError):
    """The file or bucket object does not exist (a store's first manifest, before anything is published)."""


class IntegrityError(ModelSourceError):
    """A downloaded file is not what was promised: wrong sha256 or truncated."""


class ModelLoadError(DashboardError):
    """A file was downloaded but is not a model Keras can load."""


class ModelMemoryError(ModelLoadError):
    """A version would not fit in MODEL_MEMORY_MB beside the versions that must stay loaded."""


class UnsafeModelError(ModelLoadError):
    """A model was refused because loading it could run code from the file."""


class SchemaError(DashboardError):
    """A schema is malformed, or disagrees with the model."""


class InputError(DashboardError):
    """An uploaded or given table cannot be used at all (empty, binary, too large, missing column).

    `template` marks a problem the expected header would solve: each door adds its own way to get it (the page:
    the Batch tab's template), so the API and the command line never point at a tab they do not have."""

    def __init__(self, message: str, template: bool = False) -> None:
        super().__init__(message)
        self.template = template


class MissingColumnsError(InputError):
    """A table lacks columns the schema needs (it cannot be predicted at all; the API answers 422)."""


class PublishError(DashboardError):
    """A publish request that cannot be carried out as asked."""


def scrub(text: str) -> str:
    """Remove query strings, fragments and user:password@ from every URL in text."""
    text = _USERINFO.sub(lambda m: m.group("scheme"), text)
    text = _URL_QUERY.sub(lambda m: m.group("head"), text)
    text = _LOOSE_QUERY.sub(lambda m: m.group("head"), text)
    return _AUTH_FIELDS.sub(lambda m: m.group("name") + m.group("sep") + "[redacted]", text)


def describe(exc: BaseException) -> str:
    """The full redacted traceback of exc, for server logs."""
    return scrub("".join(traceback.format_exception(exc)))


class ScrubFilter(logging.Filter):
    """A logging filter that redacts URLs in a record (urllib3 logs retried URLs with their query strings)."""

    def __init__(self, drop: bool = False) -> None:
        super().__init__()
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        if self.drop:  # a logger whose every record is about credentials (botocore.auth)
            return False
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def scrub_library_logs(*names: str, drop: bool = False) -> None:
    """Attach ScrubFilter to the named loggers (once); drop=True silences them instead."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubFilter) for f in logger.filters):
            logger.addFilter(ScrubFilter(drop))
