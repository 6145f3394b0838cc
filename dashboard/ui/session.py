"""This browser session's memory, by name: what each tab keeps between reruns, as small typed values.

Widget keys ("version", "compare-version", "single-<feature>") stay Streamlit's; everything else a tab keeps
goes through these accessors, so no tab reads another tab's private layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.scoring import BatchResult, Comparison
from dashboard.service import Served
from dashboard.store.catalog import ModelCatalog
from dashboard.store.versions import Catalog


@dataclass(frozen=True)
class Failure:
    """A version that could not be served, and why (already redacted)."""

    label: str
    identity: str  # ModelVersion.identity: a republished version is tried afresh
    message: str
    retryable: bool = True  # a download or storage problem; a model that cannot be served at all is not


@dataclass(frozen=True)
class Upload:
    """The CSV uploaded in the Batch tab, read once (the Compare tab runs a second version on the same table)."""

    file_id: str
    name: str
    table: InputTable


@dataclass(frozen=True)
class Outcome:
    """A result and what it was computed for: (upload id or "", version label, digest), and for compare the other."""

    key: tuple[Any, ...]
    value: Any


def _get(name: str, default: Any = None) -> Any:
    return st.session_state.get(name, default)


def _set(name: str, value: Any) -> None:
    st.session_state[name] = value


def _drop(name: str) -> None:
    st.session_state.pop(name, None)


# models
def last_models() -> ModelCatalog | None:
    """The last catalog of models that could be read."""
    return _get("last-models")


def remember_models(catalog: ModelCatalog) -> None:
    _set("last-models", catalog)


def model_link_read() -> bool:
    """True once ?model= from a shared link has been read in this session."""
    return bool(_get("model-link-read"))


def mark_model_link_read() -> None:
    _set("model-link-read", True)


def forget_model_choices() -> None:
    """Another model was picked: follow its default version, forget the last one's failure."""
    for name in ("picked", "failed", "url-warning"):
        _drop(name)
    _set("link-read", True)  # ?version= in the link was for the model the link named


# versions
def refreshes() -> int:
    """How many times Refresh was pressed in this session (part of the catalog's cache key)."""
    return _get("refreshes", 0)


def count_refresh() -> None:
    _set("refreshes", refreshes() + 1)


def last_catalog() -> Catalog | None:
    """The last version list that could be read."""
    return _get("last-catalog")


def remember_catalog(catalog: Catalog) -> None:
    _set("last-catalog", catalog)


def picked() -> bool:
    """True once the person chose a version (by hand or by a shared link); until then the page follows the default."""
    return bool(_get("picked"))


def mark_picked() -> None:
    _set("picked", True)


def link_read() -> bool:
    """True once ?version= from a shared link has been read in this session."""
    return bool(_get("link-read"))


def take_link_once() -> bool:
    """True on the session's first run only: the moment ?version= from a shared link is read."""
    first = not _get("link-read")
    _set("link-read", True)
    return first


def link_warning() -> str | None:
    return _get("url-warning")


def set_link_warning(text: str | None) -> None:
    _set("url-warning", text)


# serving
def failure() -> Failure | None:
    """The version that failed, remembered until Retry or Refresh."""
    return _get("failed")


def remember_failure(failure: Failure) -> None:
    _set("failed", failure)


def forget_failure() -> None:
    _drop("failed")


def last_good() -> Served | None:
    """The last version that served in this session."""
    return _get("last-good")


def remember_good(served: Served) -> None:
    _set("last-good", served)


# tabs
def _outcome(name: str, key: tuple[Any, ...]) -> Any:
    stored = _get(name)
    return stored.value if isinstance(stored, Outcome) and stored.key == key else None


def single_result(served: Served) -> BatchResult | None:
    """The form's last result for this version."""
    return _outcome("single-result", (served.label, served.version.identity))


def keep_single_result(served: Served, result: BatchResult) -> None:
    _set("single-result", Outcome((served.label, served.version.identity), result))


def defaulted(served: Served) -> tuple[tuple[str, object], ...]:
    """The form's emptied number fields at its last prediction with this version, with the defaults used."""
    return _outcome("single-defaulted", (served.label, served.version.identity)) or ()


def keep_defaulted(served: Served, value: tuple[tuple[str, object], ...]) -> None:
    _set("single-defaulted", Outcome((served.label, served.version.identity), value))


def prediction_id(served: Served) -> str | None:
    """The history id of the form's last prediction with this version (for "Report a wrong answer")."""
    return _outcome("single-prediction-id", (served.label, served.version.identity))


def keep_prediction_id(served: Served, value: str) -> None:
    _set("single-prediction-id", Outcome((served.label, served.version.identity), value))


def explained(served: Served) -> Any:
    """The form's last explanation for this version: (understand.Explained, the values asked about)."""
    return _outcome("single-explained", (served.label, served.version.identity))


def keep_explained(served: Served, value: Any) -> None:
    _set("single-explained", Outcome((served.label, served.version.identity), value))


def upload() -> Upload | None:
    """The CSV in the Batch tab, if one is uploaded and could be read."""
    return _get("batch-upload-table")


def keep_upload(value: Upload | None) -> None:
    """Remember the uploaded table, or forget it (and its results) when the file is removed."""
    if value is None:
        for name in ("batch-upload-table", "batch-result", "compare-result"):
            _drop(name)
    else:
        _set("batch-upload-table", value)


def upload_seen() -> Upload | None:
    """The upload the whole page (not only the Batch tab's fragment) has already been rerun for."""
    return _get("batch-upload-seen")


def mark_upload_seen(value: Upload) -> None:
    _set("batch-upload-seen", value)


def batch_result(file_id: str, served: Served) -> BatchResult | None:
    """This session's result for this upload and version, if it was already predicted."""
    return _outcome("batch-result", (file_id, served.label, served.version.identity))


def keep_batch_result(file_id: str, served: Served, result: BatchResult) -> None:
    _set("batch-result", Outcome((file_id, served.label, served.version.identity), result))


def explained_batch(file_id: str, served: Served) -> BatchResult | None:
    """The upload's result with attribution columns, once "Explain every row" was ticked."""
    return _outcome("batch-explained", (file_id, served.label, served.version.identity))


def keep_explained_batch(file_id: str, served: Served, result: BatchResult) -> None:
    _set("batch-explained", Outcome((file_id, served.label, served.version.identity), result))


def comparison(key: tuple[Any, ...]) -> Comparison | None:
    return _outcome("compare-result", key)


def keep_comparison(key: tuple[Any, ...], result: Comparison) -> None:
    _set("compare-result", Outcome(key, result))
