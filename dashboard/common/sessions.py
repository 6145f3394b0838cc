"""Sign-in sessions, ended on the server: Streamlit's st.login keeps the signed-in person's claims in a signed cookie
that lives 30 days and stays valid after Sign out (a copied cookie signed in again). Here a session is the cookie's
signing time: it ends AUTH_SESSION_HOURS after sign-in, and Sign out ends every session of that person signed
before it (kept in this process: with several dynos, each refuses it once it sees the sign-out; all end at the
maximum age anyway). Both the page's gate and the HTTP gate ask `check`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

USER_COOKIE = "_streamlit_user"  # st.login's signed cookie of the signed-in person's claims

_SIGNED_OUT: dict[str, float] = {}  # subject -> when they last signed out (epoch seconds)
_LOCK = threading.Lock()


def subject(claims: Mapping[str, Any]) -> str:
    """Who a session belongs to: the provider's subject (or the address when a provider sends no sub)."""
    return f"{claims.get('iss') or ''}|{claims.get('sub') or claims.get('email') or ''}"


def signed_in(cookies: Callable[[str], str | None], secret: str, hours: float) -> tuple[dict | None, str]:
    """(the claims of a live session, "") or (None, why not) from the request's cookies (a getter by name)."""
    from itsdangerous import BadSignature, URLSafeTimedSerializer  # what st.login signs its cookies with

    signed_at: list[float] = []

    def one(name: str) -> bytes | None:
        value = cookies(name)
        if value is None:
            return None
        try:
            payload, when = URLSafeTimedSerializer(secret, salt=name).loads(value, return_timestamp=True)
        except BadSignature:
            return None
        if name == USER_COOKIE:
            signed_at.append(when.timestamp())
        return payload.encode() if isinstance(payload, str) else payload

    try:
        raw = _joined(one)
        claims = json.loads(raw) if raw else None
    except Exception:  # undecodable: no session
        return None, "no session"
    if not isinstance(claims, dict) or not claims.get("is_logged_in", True) or not signed_at:
        return None, "no session"
    started = signed_at[0]
    if time.time() - started > hours * 3600:
        return None, f"your session is older than {hours:g} hours"
    with _LOCK:
        ended = _SIGNED_OUT.get(subject(claims))
    if ended is not None and started < ended:
        return None, "you signed out"
    return claims, ""


def _joined(one: Callable[[str], bytes | None]) -> bytes | None:
    """The user cookie's value, joined from its chunks when st.login split a large one: the main cookie then holds
    b"chunks-N" and the value is in USER_COOKIE_1 .. USER_COOKIE_N (Streamlit's own format)."""
    value = one(USER_COOKIE)
    found = re.match(rb"chunks-(\d+)", value) if value is not None else None
    if found is None:
        return value
    parts = [one(f"{USER_COOKIE}_{i + 1}") for i in range(int(found.group(1)))]
    return None if any(part is None for part in parts) else b"".join(parts)


def sign_out(claims: Mapping[str, Any]) -> None:
    """End every session of this person signed in until now."""
    with _LOCK:
        # cookie times are whole seconds, rounded down: a cookie signed in the same second as this sign-out counts
        # as before it (a copied cookie must never survive; signing in again within that second means once more)
        _SIGNED_OUT[subject(claims)] = time.time()
