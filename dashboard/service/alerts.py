"""Alerts without another service: MONITOR_WEBHOOK_URL receives one JSON message when a feature's drift turns
major, the refused-row rate or the flagged-answer rate crosses its threshold (MONITOR_ERROR_RATE over the last hour,
MONITOR_FLAG_RATE over the last day), or the default version fails to load.

At most one message per cause (what, model, version, feature) per hour; a cause that stays on sends nothing more
until it clears. A message is posted with retries (urllib3's Retry on connection errors and 429/5xx, backing off)
from a thread of its own, never from a request; its body is scrubbed of URLs' query strings and credentials, and the
webhook's own URL (a secret: whoever has it may post) is never logged.

The shape is {"text": one line (Slack and Teams incoming webhooks show it), "cause", "model", "version", "feature",
"value", "threshold", "at", "dashboard"}.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import urllib3
from urllib3.util import Retry

from dashboard.common.logs import log
from dashboard.config import Settings
from dashboard.errors import DashboardError, scrub
from dashboard.history.monitoring import Scope, hour_of
from dashboard.service import monitor as watch
from dashboard.service.load import Served

Cause = Literal["drift", "refused_rows", "flagged_answers", "load_failed"]
QUIET_SECONDS = 3600.0  # one message per cause per hour
MIN_ROWS = 20  # a rate over fewer rows than this is not an alert
TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)


@dataclass
class Alerts:
    """The process's alert sender and its memory of what was sent (see the module docstring)."""

    url: str
    error_rate: float
    flag_rate: float
    dashboard: str = "keras-dashboard"
    retries: int = 3
    backoff: float = 0.5
    sent: int = 0
    failed: int = 0
    _last: dict[tuple, float] = field(default_factory=dict)  # cause key -> when its last message went
    _on: set[tuple] = field(default_factory=set)  # causes on at the last check
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        retry = Retry(
            total=self.retries,
            backoff_factor=self.backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"POST"}),
            raise_on_status=False,
        )
        self._http = urllib3.PoolManager(retries=retry, timeout=TIMEOUT)

    @property
    def where(self) -> str:
        """The webhook's host, for the log (its path and query may be the secret)."""
        return urlsplit(self.url).hostname or "the webhook"

    def check(self, served: Served, recorder: Any, default_model: bool = False) -> list[dict[str, Any]]:
        """Check one served version's last hour (refused rows) and last day (drift, flagged answers); post what
        turned on. Returns the messages posted."""
        now = datetime.now(UTC)
        until = hour_of(now) + timedelta(hours=1)
        day = watch.figures(
            recorder, served, watch.scope_of(served, until - timedelta(days=1), until, "day", default_model)
        )
        hour = watch.figures(
            recorder,
            served,
            Scope(day.scope.model, day.scope.version, now - timedelta(hours=1), until, default_model, "hour"),
        )
        model, version = served.version.model_name, served.label
        found: list[tuple[tuple, dict[str, Any]]] = []
        for entry in day.drift:
            if entry["time"] == "all" and entry["verdict"] == "major":
                psi, major, name = entry["psi"], entry["major_at"], entry["feature"]
                text = (
                    f"input {name!r} of {model} {version} drifted (major) from the training data over the last day: "
                    f"PSI {psi:.3f} over {entry['rows']:,} values (major from {major:.3f})"
                )
                found.append(
                    (("drift", model, version, name), self._message("drift", model, version, text, psi, major, name))
                )

        def rate(cause: Cause, count: int, total: int, limit: float, setting: str, what: str) -> None:
            if total >= MIN_ROWS and count / total > limit:
                text = f"{count / total:.1%} {what} ({count:,} of {total:,}; {setting} is {limit:.1%})"
                message = self._message(cause, model, version, text, round(count / total, 4), limit)
                found.append(((cause, model, version, ""), message))

        # the hour's scope starts at the previous clock hour: up to two hours of counts
        rows, refused = hour.totals["rows"], hour.totals["refused_rows"]
        what = f"of the rows sent to {model} {version} in the last hour were refused"
        rate("refused_rows", refused, rows, self.error_rate, "MONITOR_ERROR_RATE", what)
        predicted, flagged = day.totals["rows"] - day.totals["refused_rows"], day.totals["flagged_rows"]
        what = f"of the answers of {model} {version} in the last day were reported wrong"
        rate("flagged_answers", flagged, predicted, self.flag_rate, "MONITOR_FLAG_RATE", what)
        return self._turned_on(found, prefix=(model, version))

    def load_failed(self, model: str, version: str, why: str) -> list[dict[str, Any]]:
        """The default version could not be loaded: post it (once an hour while it keeps failing)."""
        message = self._message(
            "load_failed",
            model,
            version,
            f"the default version {version} of {model} could not be loaded: {why}; the dashboard keeps serving "
            "the last good version it has",
        )
        return self._post_due([(("load_failed", model, version, ""), message)])

    def _turned_on(self, found: list[tuple[tuple, dict[str, Any]]], prefix: tuple) -> list[dict[str, Any]]:
        """Post the causes that were off at the last check (and not sent within the hour); forget those now off."""
        with self._lock:
            now_on = {key for key, _ in found}
            gone = {key for key in self._on if key[1:3] == prefix and key not in now_on}
            new = [(key, message) for key, message in found if key not in self._on]
            self._on = (self._on - gone) | now_on
        return self._post_due(new)

    def _post_due(self, found: list[tuple[tuple, dict[str, Any]]]) -> list[dict[str, Any]]:
        posted = []
        for key, message in found:
            with self._lock:
                last = self._last.get(key)
                if last is not None and time.monotonic() - last < QUIET_SECONDS:
                    continue
                self._last[key] = time.monotonic()
            if self.post(message):
                posted.append(message)
        return posted

    def _message(
        self,
        cause: Cause,
        model: str,
        version: str,
        text: str,
        value: float | None = None,
        threshold: float | None = None,
        feature: str | None = None,
    ) -> dict[str, Any]:
        return {
            "text": scrub(f"{self.dashboard}: {text}"),
            "cause": cause,
            "model": model,
            "version": version,
            "feature": feature,
            "value": value,
            "threshold": threshold,
            "at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "dashboard": self.dashboard,
        }

    def post(self, message: dict[str, Any]) -> bool:
        """POST one message (retried); False, logged without the URL, when the webhook does not take it."""
        body = json.dumps(message).encode()
        try:
            answer = self._http.request("POST", self.url, body=body, headers={"Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as exc:
            self.failed += 1
            log.warning("alert %s not delivered to %s: %s", message["cause"], self.where, type(exc).__name__)
            return False
        if answer.status >= 300:
            self.failed += 1
            log.warning("alert %s refused by %s: HTTP %d", message["cause"], self.where, answer.status)
            return False
        self.sent += 1
        log.info("alert %s sent to %s: %s", message["cause"], self.where, message["text"])
        return True


def alerts_for(settings: Settings) -> Alerts | None:
    """The sender for MONITOR_WEBHOOK_URL, or None when it is not set."""
    if not settings.monitor_webhook_url:
        return None
    return Alerts(settings.monitor_webhook_url, settings.monitor_error_rate, settings.monitor_flag_rate)


def watch_forever(every: float, rounds, stop: threading.Event) -> None:
    """Call rounds() (one check of every model's default version) every `every` seconds until stop is set; a check
    that fails is logged and the next one goes on."""
    while not stop.wait(every):
        try:
            rounds()
        except DashboardError as exc:
            log.warning("checking for alerts failed: %s", exc.message)
        except Exception as exc:  # a bug must not stop the watcher
            log.warning("checking for alerts failed: %s", scrub(f"{type(exc).__name__}: {exc}"))
