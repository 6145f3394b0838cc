"""Settings: environment first, then Streamlit secrets (same names), then the embedded demo store.

This is the only module that reads the environment or the secrets file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dashboard.access import SIGN_IN_SETTINGS, Access, parse_list, parse_tokens, sign_in_from
from dashboard.common.setting_values import boolean, choice, integer, number, read_secrets, section
from dashboard.contract import RUNTIME_CHOICES, ModelLimits, RuntimeChoice
from dashboard.errors import ConfigError

DEMO_MANIFEST = Path(__file__).resolve().parent / "demo" / "manifest.json"
_VERSIONED_URL = re.compile(r"^MODEL_URL_V(?P<version>[0-9A-Za-z_]+)$")
_VERSIONED_SHA = re.compile(r"^MODEL_SHA256_V(?P<version>[0-9A-Za-z_]+)$")
HistoryScope = Literal["all", "own"]
_SINGLE = {  # one model's sources: a catalog replaces them all
    "MODEL_MANIFEST_URL": "manifest_url",
    "MODEL_URL": "model_url",
    "MODEL_ARCHITECTURE_URL": "architecture_url",
    "MODEL_BUILDER": "builder",
    "MODEL_URL_V*": "versioned_urls",
}


@dataclass(frozen=True)
class Settings:
    """Everything the core needs to know about where models come from and the limits it runs under."""

    catalog_url: str | None = None  # MODEL_CATALOG_URL: many models by name (store/catalog.py)
    model_name: str | None = None  # the catalog entry these settings were narrowed to (service.for_model)
    manifest_url: str | None = None
    model_url: str | None = None
    architecture_url: str | None = None
    weights_url: str | None = None
    builder: str | None = None
    versioned_urls: tuple[tuple[str, str, str | None], ...] = ()  # (version, url, sha256) per MODEL_URL_V*
    model_version: str | None = None
    model_sha256: str | None = None
    schema_url: str | None = None
    cache_dir: Path = Path.home() / ".cache" / "keras-dashboard"
    safe_mode: bool = True
    runtime: RuntimeChoice = "auto"  # auto: Keras when TensorFlow is installed, else LiteRT
    max_download_bytes: int = 1 << 30
    max_unpacked_bytes: int | None = None  # None: the same as max_download_bytes
    max_parameters: int | None = None  # None: float32 weights filling max_unpacked_bytes
    max_outputs: int = 10_000
    download_timeout: float = 600.0  # seconds for one whole file, however it trickles
    csv_max_bytes: int = 50 * 1024 * 1024  # with csv_max_rows: fits the Keras stack on a 1 GB dyno
    csv_max_rows: int = 200_000
    csv_max_columns: int = 1_000
    image_max_pixels: int = 40_000_000  # one image (width x height), refused from its header before decoding
    api_max_bytes: int = 50 * 1024 * 1024  # one HTTP request body
    api_max_rows: int = 100_000  # rows in one HTTP request (JSON or CSV)
    # a JSON body becomes ~40x its size in Python objects: 8 MiB (~100,000 short rows) parses to ~300 MB
    api_max_json_bytes: int = 8 * 1024 * 1024
    api_explain_max_cells: int = 100_000  # rows x inputs explained in one request (each costs 2**n or 8 (n+1) calls)
    api_batch_wait_ms: float = 2.0  # how long a request waits for others to share its model call
    server_idle_seconds: float = 15.0  # a request that sends nothing this long mid-way is closed (connections.py)
    server_connections_per_client: int = 256  # open connections one address may hold
    api_batch_max_rows: int = 4096  # rows that make a batch run at once
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 3
    refresh_seconds: int = 300
    cached_versions: int = 2
    memory_mb: int | None = None  # MODEL_MEMORY_MB: loaded models' budget (None: a share of the dyno's memory)
    using_demo: bool = False
    # bucket access (the SDKs also read these from the environment themselves); secrets are kept out of repr
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    storage_emulator_host: str | None = None
    gcp_project: str | None = None
    access: Access = field(default_factory=Access)
    # prediction history (history.py): DATABASE_URL holds a password, so it is kept out of repr
    database_url: str | None = field(default=None, repr=False)
    history: bool = True
    history_scope: HistoryScope = "all"
    history_rows: int = 100  # an API call with up to this many rows keeps its inputs and outputs
    history_file_rows: int = 0  # a batch file or CLI run with up to this many rows keeps them (0: summary only)
    history_images: str = "off"  # "thumbnails": kept image inputs carry a small PNG (the training-data export)
    history_queue: int = 10_000  # records that may wait while the database is down
    history_queue_mb: int = 64  # ... and the memory they may take; past either, records go to the spool on disk
    history_spool_mb: int = 256  # records kept on local disk until the database answers (then dropped, counted)
    history_retention_days: int = 365  # predictions and reports older than this are deleted (0: kept forever)
    # monitoring alerts (service/alerts.py): the webhook URL is a secret (it lets anyone post), kept out of repr
    monitor_webhook_url: str | None = field(default=None, repr=False)
    monitor_error_rate: float = 0.1  # share of refused rows over the last hour that sends an alert
    monitor_flag_rate: float = 0.05  # share of predicted rows reported wrong over the last day that sends one
    monitor_check_seconds: float = 300.0  # how often the history is checked for alerts

    @property
    def model_limits(self) -> ModelLimits:
        """The limits a model file is checked against before Keras reads it."""
        unpacked = self.max_unpacked_bytes or self.max_download_bytes
        return ModelLimits(
            max_unpacked_bytes=unpacked,
            max_parameters=self.max_parameters or unpacked // 4,
            max_outputs=self.max_outputs,
        )

    @property
    def source_label(self) -> str:
        """Where versions come from, in words (URLs are redacted by the caller that shows them)."""
        parts = []
        if self.using_demo:
            return "embedded demo store"
        if self.catalog_url:
            parts.append(f"catalog {self.catalog_url}")
        if self.manifest_url:
            parts.append(f"manifest {self.manifest_url}")
        if self.model_url:
            parts.append(f"MODEL_URL {self.model_url}")
        if self.architecture_url:
            parts.append(f"MODEL_ARCHITECTURE_URL {self.architecture_url}")
        if self.builder:
            parts.append(f"MODEL_BUILDER {self.builder}")
        if self.versioned_urls:
            parts.append(f"{len(self.versioned_urls)} MODEL_URL_V* variable(s)")
        return "; ".join(parts)


DEFAULTS = Settings()  # the one place each default is written: the field defaults above


def load_settings(environ: Mapping[str, str] | None = None, secrets: Mapping[str, object] | None = None) -> Settings:
    """Build the Settings from environ (default os.environ) and secrets (default the secrets.toml files)."""
    env = dict(os.environ if environ is None else environ)
    sec = read_secrets(env) if secrets is None else dict(secrets)

    def get(name: str) -> str | None:
        value = env.get(name)
        if value is None or value.strip() == "":
            value = sec.get(name)
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    values = _sources(get, set(env) | set(sec))
    configured = any(
        values[k] for k in ("catalog_url", "manifest_url", "model_url", "architecture_url", "builder", "versioned_urls")
    )
    cache = get("MODEL_CACHE_DIR")
    xdg = env.get("XDG_CACHE_HOME")
    default_cache = (
        Path(xdg) / "keras-dashboard" if xdg else Path(env.get("HOME") or Path.home()) / ".cache" / "keras-dashboard"
    )
    return Settings(
        **{**values, "manifest_url": values["manifest_url"] if configured else str(DEMO_MANIFEST)},
        cache_dir=Path(cache).expanduser() if cache else default_cache,
        using_demo=not configured,
        **_limits(get),
        **_buckets(get),
        **_history(get),
        **_monitoring(get),
        access=_access(get, sec),
    )


Get = Callable[[str], "str | None"]


def _sources(get: Get, names: set[str]) -> dict[str, Any]:
    """Where the versions come from (MODEL_MANIFEST_URL, MODEL_URL, MODEL_URL_V*, ...), checked for combinations
    that cannot work."""
    shas = {}
    for name in names:
        m = _VERSIONED_SHA.match(name)
        if m and get(name):
            shas[_version_from_suffix(m.group("version"))] = get(name)
    versioned = []
    for name in sorted(names):
        m = _VERSIONED_URL.match(name)
        if m and get(name):
            version = _version_from_suffix(m.group("version"))
            versioned.append((version, get(name), shas.get(version)))
    values = dict(
        catalog_url=get("MODEL_CATALOG_URL"),
        manifest_url=get("MODEL_MANIFEST_URL"),
        model_url=get("MODEL_URL"),
        architecture_url=get("MODEL_ARCHITECTURE_URL"),
        weights_url=get("MODEL_WEIGHTS_URL"),
        builder=get("MODEL_BUILDER"),
        versioned_urls=tuple(versioned),
        model_version=get("MODEL_VERSION") or get("APP_VERSION"),
        model_sha256=(get("MODEL_SHA256") or "").lower() or None,
        schema_url=get("MODEL_SCHEMA_URL"),
    )
    if values["architecture_url"] and not values["weights_url"]:
        raise ConfigError(
            "MODEL_ARCHITECTURE_URL is set but MODEL_WEIGHTS_URL is not; "
            "set MODEL_WEIGHTS_URL to the .weights.h5 file saved with the architecture"
        )
    if values["builder"] and not values["weights_url"]:
        raise ConfigError(
            "MODEL_BUILDER is set but MODEL_WEIGHTS_URL is not; "
            "set MODEL_WEIGHTS_URL to the .weights.h5 file for the builder's model"
        )
    if values["weights_url"] and not (values["architecture_url"] or values["builder"]):
        raise ConfigError(
            "MODEL_WEIGHTS_URL is set without MODEL_ARCHITECTURE_URL or MODEL_BUILDER; "
            "set one of them so the weights have a model to go into"
        )
    if values["architecture_url"] and values["builder"]:
        raise ConfigError("MODEL_ARCHITECTURE_URL and MODEL_BUILDER are both set; keep one of them")
    single = [name for name, key in _SINGLE.items() if values[key]]
    if values["catalog_url"] and single:
        raise ConfigError(
            f"MODEL_CATALOG_URL is set together with {', '.join(single)}; a catalog names each model's manifest "
            "itself: keep MODEL_CATALOG_URL alone (add the model to the catalog with publish --model NAME), or "
            "remove it to serve one model"
        )
    if values["model_sha256"] and not re.fullmatch(r"[0-9a-f]{64}", values["model_sha256"]):
        raise ConfigError("MODEL_SHA256 must be 64 hexadecimal characters (the output of sha256sum)")

    return values


def _limits(get: Get) -> dict[str, Any]:
    """Model loading, runtime, download, CSV, API and connection limits."""
    d = DEFAULTS
    return dict(
        safe_mode=boolean(get("MODEL_SAFE_MODE"), "MODEL_SAFE_MODE", d.safe_mode),
        runtime=choice(get("MODEL_RUNTIME"), "MODEL_RUNTIME", RUNTIME_CHOICES),
        max_download_bytes=integer(get("MODEL_MAX_BYTES"), "MODEL_MAX_BYTES", d.max_download_bytes),
        max_unpacked_bytes=integer(get("MODEL_MAX_UNPACKED_BYTES"), "MODEL_MAX_UNPACKED_BYTES", None),
        max_parameters=integer(get("MODEL_MAX_PARAMETERS"), "MODEL_MAX_PARAMETERS", None),
        max_outputs=integer(get("MODEL_MAX_OUTPUTS"), "MODEL_MAX_OUTPUTS", d.max_outputs),
        download_timeout=number(get("MODEL_DOWNLOAD_TIMEOUT"), "MODEL_DOWNLOAD_TIMEOUT", d.download_timeout),
        csv_max_bytes=integer(get("CSV_MAX_BYTES"), "CSV_MAX_BYTES", d.csv_max_bytes),
        csv_max_columns=integer(get("CSV_MAX_COLUMNS"), "CSV_MAX_COLUMNS", d.csv_max_columns),
        image_max_pixels=integer(get("IMAGE_MAX_PIXELS"), "IMAGE_MAX_PIXELS", d.image_max_pixels),
        api_max_bytes=integer(get("API_MAX_BYTES"), "API_MAX_BYTES", d.api_max_bytes),
        api_max_rows=integer(get("API_MAX_ROWS"), "API_MAX_ROWS", d.api_max_rows),
        api_max_json_bytes=integer(get("API_MAX_JSON_BYTES"), "API_MAX_JSON_BYTES", d.api_max_json_bytes),
        api_explain_max_cells=integer(get("API_EXPLAIN_MAX_CELLS"), "API_EXPLAIN_MAX_CELLS", d.api_explain_max_cells),
        api_batch_wait_ms=number(get("API_BATCH_WAIT_MS"), "API_BATCH_WAIT_MS", d.api_batch_wait_ms),
        server_idle_seconds=number(get("SERVER_IDLE_SECONDS"), "SERVER_IDLE_SECONDS", d.server_idle_seconds),
        server_connections_per_client=integer(
            get("SERVER_CONNECTIONS_PER_CLIENT"), "SERVER_CONNECTIONS_PER_CLIENT", d.server_connections_per_client
        ),
        api_batch_max_rows=integer(get("API_BATCH_MAX_ROWS"), "API_BATCH_MAX_ROWS", d.api_batch_max_rows),
        csv_max_rows=integer(get("CSV_MAX_ROWS"), "CSV_MAX_ROWS", d.csv_max_rows),
        connect_timeout=number(get("MODEL_CONNECT_TIMEOUT"), "MODEL_CONNECT_TIMEOUT", d.connect_timeout),
        read_timeout=number(get("MODEL_READ_TIMEOUT"), "MODEL_READ_TIMEOUT", d.read_timeout),
        retries=integer(get("MODEL_RETRIES"), "MODEL_RETRIES", d.retries, minimum=0),
        refresh_seconds=integer(get("MODEL_REFRESH_SECONDS"), "MODEL_REFRESH_SECONDS", d.refresh_seconds),
        cached_versions=integer(get("MODEL_CACHE_VERSIONS"), "MODEL_CACHE_VERSIONS", d.cached_versions),
        memory_mb=integer(get("MODEL_MEMORY_MB"), "MODEL_MEMORY_MB", None),
    )


def _buckets(get: Get) -> dict[str, Any]:
    """Bucket credentials and endpoints, read the way the cloud SDKs read them."""
    return dict(
        aws_access_key_id=get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=get("AWS_SESSION_TOKEN"),
        aws_endpoint_url=get("AWS_ENDPOINT_URL_S3") or get("AWS_ENDPOINT_URL"),
        aws_region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
        storage_emulator_host=get("STORAGE_EMULATOR_HOST"),
        gcp_project=get("GOOGLE_CLOUD_PROJECT"),
    )


def _history(get: Get) -> dict[str, Any]:
    """The prediction history: where, whether, whose, and its bounds."""
    d = DEFAULTS
    return dict(
        database_url=get("DATABASE_URL"),
        history=boolean(get("HISTORY"), "HISTORY", d.history),
        history_scope=choice(get("HISTORY_SCOPE"), "HISTORY_SCOPE", ("all", "own")),
        history_images=choice(get("HISTORY_IMAGES"), "HISTORY_IMAGES", ("off", "thumbnails")),
        history_rows=integer(get("HISTORY_ROWS"), "HISTORY_ROWS", d.history_rows, minimum=0),
        history_file_rows=integer(get("HISTORY_FILE_ROWS"), "HISTORY_FILE_ROWS", d.history_file_rows, minimum=0),
        history_queue=integer(get("HISTORY_QUEUE"), "HISTORY_QUEUE", d.history_queue),
        history_queue_mb=integer(get("HISTORY_QUEUE_MB"), "HISTORY_QUEUE_MB", d.history_queue_mb),
        history_spool_mb=integer(get("HISTORY_SPOOL_MB"), "HISTORY_SPOOL_MB", d.history_spool_mb, minimum=0),
        history_retention_days=integer(
            get("HISTORY_RETENTION_DAYS"), "HISTORY_RETENTION_DAYS", d.history_retention_days, minimum=0
        ),
    )


def _monitoring(get: Get) -> dict[str, Any]:
    """Alerts to a webhook: where, and the thresholds."""
    d = DEFAULTS
    url = get("MONITOR_WEBHOOK_URL")
    if url and not re.match(r"https?://[^/\s]+", url):
        raise ConfigError("MONITOR_WEBHOOK_URL must be an http:// or https:// URL (the address alerts are posted to)")
    rates = {}
    for name, default in (("MONITOR_ERROR_RATE", d.monitor_error_rate), ("MONITOR_FLAG_RATE", d.monitor_flag_rate)):
        given = get(name)
        try:
            rates[name] = default if given is None else float(given)
        except ValueError:
            rates[name] = -1.0
        if not 0 < rates[name] <= 1:
            raise ConfigError(f"{name}={given!r} is not a share; use a number above 0 and at most 1, such as 0.1 (10%)")
    every = number(get("MONITOR_CHECK_SECONDS"), "MONITOR_CHECK_SECONDS", d.monitor_check_seconds)
    if every < 1:
        raise ConfigError(f"MONITOR_CHECK_SECONDS must be at least 1, not {every:g}")
    return dict(
        monitor_webhook_url=url,
        monitor_error_rate=rates["MONITOR_ERROR_RATE"],
        monitor_flag_rate=rates["MONITOR_FLAG_RATE"],
        monitor_check_seconds=every,
    )


def _access(get: Get, sec: Mapping[str, object]) -> Access:
    """Sign-in (OIDC), the allow-list and API tokens."""
    return Access(
        sign_in=sign_in_from({name: get(name) for name in SIGN_IN_SETTINGS}, section(sec.get("auth"))),
        allowed_emails=parse_list(get("AUTH_ALLOWED_EMAILS")),
        allowed_domains=parse_list(get("AUTH_ALLOWED_DOMAINS")),
        session_hours=number(get("AUTH_SESSION_HOURS"), "AUTH_SESSION_HOURS", 12.0),
        tokens=parse_tokens(get("API_TOKENS")),
    )


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the logs unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _version_from_suffix(suffix: str) -> str:
    return suffix.replace("_", ".").lower()
