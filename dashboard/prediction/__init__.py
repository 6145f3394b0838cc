"""Rows -> answers, with pandas and numpy only: the schema, reading inputs, validation, scoring, comparison,
attributions and drift."""
