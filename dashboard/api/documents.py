"""The shapes of the HTTP API's answers and request bodies, for its OpenAPI document (answers are built directly,
without validation, on the hot path; schemathesis checks that they match these)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorAnswer(BaseModel):
    error: ErrorBody


class VersionInfo(BaseModel):
    version: str
    sha256: str | None
    pinned: bool
    notes: str
    created: str
    aliases: list[str]
    prerelease: bool
    default: bool


class ModelEntry(BaseModel):
    name: str
    description: str
    default: bool
    default_version: str | None
    versions: int | None
    error: str | None = None


class Models(BaseModel):
    default: str
    models: list[ModelEntry]
    problems: list[str]


class Versions(BaseModel):
    name: str
    model: str
    default: str
    warning: str | None
    versions: list[VersionInfo]


class Feature(BaseModel):
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    default: Any = None
    unit: str = ""
    choices: list[Any] | None = None


class ModelInfo(BaseModel):
    model: str
    version: str
    sha256: str | None
    features: list[Feature]
    output: dict[str, Any]
    runtime: str | None
    loaded: bool
    state: str


class RowAnswer(BaseModel):
    prediction: str | float | None
    probability: float | None = None
    probabilities: dict[str, float | None] | None = None
    error: str | None


class RangeNote(BaseModel):
    row: int
    feature: str
    value: float
    bound: str
    limit: float


class PredictAnswer(BaseModel):
    model_version: str
    sha256: str | None
    predictions: list[RowAnswer]
    warnings: list[RangeNote]
    prediction_id: str | None = None  # the history id (POST /api/v1/feedback); absent when HISTORY=off


class FeedbackRequest(BaseModel):
    """A wrong answer: which prediction (and row of it), and the right label (classifiers) or value (regression)."""

    prediction_id: str
    label: str | None = None
    value: float | None = None
    comment: str | None = None
    row: int = 0


class HistoryItem(BaseModel):
    id: str
    created_at: str
    user: str
    source: str
    version: str
    sha256: str | None
    runtime: str
    output_type: str
    labels: list[str] | None
    features: list[str]
    rows: int
    errors: int
    duration_ms: float
    file_name: str | None
    file_sha256: str | None
    inputs: list[dict[str, Any]] | None
    outputs: list[dict[str, Any]] | None
    summary: dict[str, Any] | None


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    total: int
    limit: int
    offset: int


class FeedbackItem(BaseModel):
    id: int
    prediction_id: str
    row: int
    created_at: str
    user: str
    version: str | None = None
    source: str | None = None
    label: str | None
    value: float | None
    comment: str | None
    inputs: dict[str, Any] | None = None
    predicted: dict[str, Any] | None = None


class VersionAgreement(BaseModel):
    version: str
    predictions: int
    rows: int
    flagged: int
    flagged_share: float


class FeedbackPage(BaseModel):
    items: list[FeedbackItem]
    total: int
    limit: int
    offset: int
    versions: list[VersionAgreement]


ERRORS = {status: {"model": ErrorAnswer} for status in (400, 404, 413, 415, 422, 503)}
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": 'one of "instances" (rows as objects, or lists in schema order), "inputs" '
                    '(columns: {feature: [values]}), "dataframe_split" or "dataframe_records"',
                    "properties": {
                        "instances": {"type": "array", "items": {"type": ["object", "array"]}},
                        "inputs": {"type": "object", "additionalProperties": {"type": "array"}},
                        "dataframe_split": {
                            "type": "object",
                            "properties": {
                                "columns": {"type": "array", "items": {"type": "string"}},
                                "data": {"type": "array", "items": {"type": "array"}},
                            },
                            "required": ["data"],
                        },
                        "dataframe_records": {"type": "array", "items": {"type": "object"}},
                    },
                    "example": {
                        "instances": [
                            {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
                        ]
                    },
                }
            },
            "text/csv": {"schema": {"type": "string"}},
            # image models (SPEC "Images"): a {"b64": ...} value in any JSON shape, a form, or one raw image
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": "one field per feature; many files in an image field are many rows",
                    "additionalProperties": {"type": "array", "items": {"type": "string", "format": "binary"}},
                }
            },
            **{
                kind: {"schema": {"type": "string", "format": "binary", "description": "one image: one row"}}
                for kind in ("image/png", "image/jpeg", "image/webp")
            },
        },
    }
}
