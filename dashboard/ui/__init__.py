"""Streamlit pieces: each `show(...)` draws one part of the page and returns plain values."""
