"""What the tests (and the benchmarks) share: the dashboard started as the Procfile does (dashboard_server), a
local HTTP file server with fault switches (testserver), PostgreSQL (postgres), venvs built from the requirement
files (venvs), the secret scanner (secretscan) and small helpers (helpers)."""
