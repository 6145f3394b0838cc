"""Who may use the dashboard: OpenID Connect sign-in for people (Streamlit's st.login) with an allow-list, and API
tokens for programs. Core rules only; the page (ui/signin.py) and the HTTP gate (api/gate.py) apply them.

Tokens are never stored in clear: API_TOKENS holds `NAME:sha256-of-token` lines; a token is checked by hashing
it and comparing digests in constant time. Removing a line revokes that token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dashboard.common.text import escaped
from dashboard.errors import ConfigError

SIGN_IN_SETTINGS = {  # environment variable -> the key in Streamlit's [auth] section
    "AUTH_SERVER_METADATA_URL": "server_metadata_url",
    "AUTH_CLIENT_ID": "client_id",
    "AUTH_CLIENT_SECRET": "client_secret",
    "AUTH_REDIRECT_URI": "redirect_uri",
    "AUTH_COOKIE_SECRET": "cookie_secret",
}
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PLAIN_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


def _shown(address: str) -> str:
    """Someone's address claim in a refusal: escaped to ASCII, at most 80 characters."""
    return escaped(address, ascii_only=True, limit=80)


@dataclass(frozen=True)
class SignIn:
    """The OIDC client settings, as Streamlit's [auth] section takes them (secrets kept out of repr)."""

    server_metadata_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    cookie_secret: str = field(repr=False)
    from_environment: bool = True  # False: Streamlit reads them from [auth] in secrets.toml itself

    def as_secrets(self) -> dict[str, dict[str, str]]:
        """{"auth": {...}} for st.App(secrets=...)."""
        return {"auth": {key: getattr(self, key) for key in SIGN_IN_SETTINGS.values()}}


@dataclass(frozen=True)
class Access:
    """The access policy: sign-in (or None), who may use it once signed in, and the API token hashes by name."""

    sign_in: SignIn | None = None
    allowed_emails: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()
    tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (name, sha256 hex of the token)
    session_hours: float = 12.0  # a sign-in lasts at most this long (Streamlit's cookie would last 30 days)

    @property
    def open(self) -> bool:
        """True with neither sign-in nor tokens: anyone who can reach the address may use it (the demo)."""
        return self.sign_in is None and not self.tokens

    @property
    def api_closed(self) -> bool:
        """True when every API route but health needs a valid token."""
        return not self.open

    def allows(self, claims: Mapping[str, Any]) -> tuple[bool, str]:
        """(allowed, why not) for a signed-in person's ID token claims.

        With an allow-list the address is the key, so it must be exactly one plain ASCII address (no control
        characters, no look-alikes such as the Kelvin sign that lowercase into a listed name, one @) and verified
        by a boolean `true` (a missing claim, "false", "true" as text or 0 are not verification)."""
        raw = claims.get("email")
        if not isinstance(raw, str) or not raw.strip():
            return False, "your sign-in gave no email address"
        if not self.allowed_emails and not self.allowed_domains:
            if claims.get("email_verified") is False:
                return (
                    False,
                    f"the address {_shown(raw)} is not verified with your sign-in provider",
                )
            return True, ""
        email = raw.strip()
        if not _PLAIN_ADDRESS.match(email):
            return False, (
                f"the address {_shown(email)} is not one plain address (exactly one @, ASCII letters, digits "
                "and . _ % + - only); ask the dashboard's owner to add you by another address"
            )
        if claims.get("email_verified") is not True:
            return False, f"the address {email} is not verified with your sign-in provider"
        email = email.lower()
        if email in self.allowed_emails or email.rsplit("@", 1)[-1] in self.allowed_domains:
            return True, ""
        return False, f"{email} is not on this dashboard's list of allowed people"

    def token_name(self, token: str) -> str | None:
        """The name of the configured token equal to `token`, or None (compared as sha256 digests, in constant time)."""
        if not _TOKEN.match(token):  # a stray newline, space or quote: never a token
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = None
        for name, expected in self.tokens:
            if hmac.compare_digest(digest, expected):
                found = name
        return found


@dataclass(frozen=True)
class ModelAccess:
    """Who may use one model of a catalog (its entry's "allowed_emails", "allowed_domains", "tokens"): nobody is
    narrowed when all three are empty; otherwise a signed-in person by verified address or domain, a program by
    its token's name, and no stranger ("anonymous")."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    tokens: frozenset[str] = frozenset()

    @property
    def restricted(self) -> bool:
        """True when the entry names who may use the model."""
        return bool(self.emails or self.domains or self.tokens)

    def admits(self, who: str) -> bool:
        """True when `who` (an address, "token NAME" or "anonymous", as the doors name people) may use the model."""
        if not self.restricted:
            return True
        if who.startswith("token "):
            return who.removeprefix("token ") in self.tokens
        email = who.strip().lower()
        if not _PLAIN_ADDRESS.match(email):
            return False
        return email in self.emails or email.rsplit("@", 1)[-1] in self.domains


def new_token(name: str) -> tuple[str, str]:
    """(a new random token, its API_TOKENS line NAME:sha256)."""
    if not _NAME.match(name):
        raise ConfigError(f"token name {name!r}: use 1 to 64 letters, digits or . _ @ -")
    token = secrets.token_urlsafe(32)
    return token, f"{name}:{hashlib.sha256(token.encode()).hexdigest()}"


def parse_tokens(text: str | None) -> tuple[tuple[str, str], ...]:
    """API_TOKENS (NAME:sha256 entries, comma- or newline-separated) -> (name, digest) pairs."""
    entries = []
    for raw in re.split(r"[,\n]", text or ""):
        entry = raw.strip()
        if not entry:
            continue
        name, _, digest = entry.partition(":")
        if not _NAME.match(name) or not _HEX64.match(digest.lower()):
            shown = name if _NAME.match(name) else "an entry"
            raise ConfigError(
                f"API_TOKENS: {shown} is not NAME:sha256 (64 hex digits); create a line with "
                "python -m dashboard token create NAME"
            )
        entries.append((name, digest.lower()))
    return tuple(entries)


def parse_list(text: str | None) -> frozenset[str]:
    """A comma-separated allow-list, lowercased (a leading @ on a domain is dropped)."""
    return frozenset(item.strip().lower().lstrip("@") for item in (text or "").split(",") if item.strip())


def sign_in_from(values: Mapping[str, str | None], section: Mapping[str, Any] | None) -> SignIn | None:
    """Sign-in from the AUTH_* variables, else from an [auth] section of secrets.toml; None when neither is set.

    Some but not all of the five is one error naming what is missing: never a half-protected app.
    """
    given = {name: values.get(name) for name in SIGN_IN_SETTINGS}
    if any(given.values()):
        missing = [name for name, value in given.items() if not value]
        if missing:
            raise ConfigError(
                f"sign-in is half configured: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; "
                "set all five AUTH_* variables (or none)"
            )
        return SignIn(**{SIGN_IN_SETTINGS[name]: str(value) for name, value in given.items()})
    if section:
        keys = list(SIGN_IN_SETTINGS.values())
        missing = [key for key in keys if not section.get(key)]
        if missing:
            raise ConfigError(f"the [auth] section of secrets.toml lacks {', '.join(missing)}; add them (or remove it)")
        return SignIn(**{key: str(section[key]) for key in keys}, from_environment=False)
    return None
