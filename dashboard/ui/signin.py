"""The sign-in door of the page: before sign-in a visitor sees the title and a sign-in button, nothing more (no
model name, store, versions, notes or schema); a signed-in person outside the allow-list sees who they are, that
the dashboard is not open to them, and a sign-out button. The sidebar of everyone else says who is signed in."""

from __future__ import annotations

import streamlit as st

from dashboard.access import Access
from dashboard.common import sessions
from dashboard.ui.words import md

TITLE = "Keras prediction dashboard"


def gate(access: Access) -> str:
    """Who is using the page ("anonymous" when it is open); stops the run for strangers and the refused."""
    if access.sign_in is None:
        return "anonymous"
    if not st.user.is_logged_in:
        st.title(TITLE)
        st.write("Sign in to use this dashboard.")
        st.button("Sign in", key="sign-in", type="primary", on_click=st.login)
        st.stop()
    live, why = sessions.signed_in(st.context.cookies.get, access.sign_in.cookie_secret, access.session_hours)
    if live is None:  # a signed-out or too old session (a cookie copied before Sign out, say): never trusted
        st.title(TITLE)
        st.write(f"Your session has ended ({why}). Sign in again to use this dashboard.")
        st.button("Sign in", key="sign-in", type="primary", on_click=st.login)
        st.stop()
    claims = st.user.to_dict()
    email = str(claims.get("email") or claims.get("sub") or "someone")
    allowed, why = access.allows(claims)
    if not allowed:
        st.title(TITLE)
        st.error(f"You are signed in as {md(email)}, but this dashboard is not open to you: {md(why)}.")
        st.button("Sign out", key="sign-out", on_click=st.logout)
        st.stop()
    return email


def show_who(access: Access, who: str) -> None:
    """The sidebar line: who is signed in (with Sign out), or that the page is open to anyone."""
    if access.sign_in is not None:
        st.sidebar.caption(f"Signed in as {md(who)}")
        st.sidebar.button("Sign out", key="sign-out", on_click=st.logout)
    elif access.open:
        st.sidebar.caption("Open to anyone who can reach this address (no sign-in configured).")
    else:
        st.sidebar.warning(
            "This page is open to anyone who can reach this address: API tokens protect only the API. "
            "Set the AUTH_* variables to require sign-in."
        )


def viewer(access: Access, who: str) -> str:
    """Who the page's person is for a model's own allow-list: their address only when the provider verified it
    (a catalog entry's "allowed_domains" must not admit an unverified address), else "anonymous"."""
    if access.sign_in is None or st.user.get("email_verified") is not True:
        return "anonymous"
    return who
