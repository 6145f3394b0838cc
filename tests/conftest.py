"""Fixtures: a real loopback HTTP store, small real Keras models, a clean environment, a copy of the demo store.

Shared helpers live in tests/helpers.py, the HTTP store in tests/testserver.py, the secret scan in
tests/secretscan.py (its hooks are imported here so pytest runs them).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.helpers import DEMO
from tests.support.secretscan import pytest_runtest_logreport, pytest_sessionfinish, pytest_sessionstart  # noqa: F401
from tests.support.testserver import start_store, stop_store

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def store():
    running, _ = start_store()
    yield running
    stop_store(running)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean environment for the app: no MODEL_* variables, a private cache and HOME."""
    for name in list(os.environ):
        if name.startswith(("MODEL_", "APP_VERSION", "CSV_", "DATABASE_URL", "HISTORY")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODEL_RETRIES", "2")
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture(scope="session")
def provider():
    """A real OpenID Connect provider on loopback (oidc-provider-mock) with two users, alice and bob."""
    import requests
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as server:
        base = f"http://127.0.0.1:{server.server_port}"
        for sub, claims in {
            "alice": {"email": "alice@example.com", "email_verified": True, "name": "Alice"},
            "bob": {"email": "bob@elsewhere.example", "email_verified": True, "name": "Bob"},
        }.items():
            requests.put(f"{base}/users/{sub}", json=claims, timeout=10).raise_for_status()
        yield base


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Small real Keras models saved in every supported format, plus hostile ones."""
    import keras

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(1)
    out = {"folder": folder}

    inputs = keras.Input((3,), name="features")
    hidden = keras.layers.Dense(6, activation="relu")(inputs)
    classifier = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(hidden))
    classifier.save(folder / "classifier.keras")
    classifier.save(folder / "classifier.h5")
    (folder / "classifier.json").write_text(classifier.to_json())
    classifier.save_weights(folder / "classifier.weights.h5")
    out["classifier"] = classifier

    inputs = keras.Input((2,), name="x")
    binary = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(4)(inputs)))
    binary.save(folder / "binary.keras")
    out["binary"] = binary

    inputs = keras.Input((2,), name="x")
    regression = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    regression.save(folder / "regression.keras")
    out["regression"] = regression

    size = keras.Input((1,), name="size", dtype="float32")
    colour = keras.Input((1,), name="colour", dtype="string")
    onehot = keras.layers.StringLookup(vocabulary=["red", "green"], output_mode="one_hot")(colour)
    joined = keras.layers.Concatenate()([size, keras.layers.Reshape((3,))(onehot)])
    named = keras.Model({"size": size, "colour": colour}, keras.layers.Dense(1, activation="sigmoid")(joined))
    named.save(folder / "named.keras")
    out["named"] = named

    canary = folder / "canary.txt"
    out["canary"] = canary
    inputs = keras.Input((3,), name="features")
    # the path is a constant inside the code object, so the saved bytecode carries it (no defaults needed)
    function = eval(f"lambda x: x if open({str(canary)!r}, 'w').close() is None else x")
    payload = keras.layers.Lambda(function)(inputs)
    hostile = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(payload))
    hostile.save(folder / "lambda.keras")
    hostile.save(folder / "lambda.h5")
    canary.unlink(missing_ok=True)
    return out


@pytest.fixture(scope="session")
def catalog_store(tmp_path_factory):
    """A store of three real models published with --model (tests/support/catalog.py)."""
    from tests.support.catalog import build_catalog

    return build_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="session")
def seeded_history(tmp_path_factory):
    """(an SQLite history file holding a drifting week up to now, what was seeded): tests/support/monitor.py."""
    from tests.support.monitor import seeded_file

    return seeded_file(tmp_path_factory.mktemp("seeded-history"))


@pytest.fixture
def copy_demo(tmp_path):
    """A writable copy of the demo store folder."""
    target = tmp_path / "demo-store"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


@pytest.fixture
def downloads(monkeypatch):
    """What each download button would send: Streamlit's media storage and deferred downloads, observed."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen: dict[str, bytes] = {}
    deferred: dict[str, object] = {}
    original = MemoryMediaFileStorage.load_and_get_id
    original_deferred = MediaFileManager.add_deferred

    def observe(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        seen[file_id] = path_or_data
        return file_id

    def observe_deferred(self, data_callable, *args, **kwargs):
        file_id = original_deferred(self, data_callable, *args, **kwargs)
        deferred[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", observe)
    monkeypatch.setattr(MediaFileManager, "add_deferred", observe_deferred)

    def content(button) -> bytes:
        if button.proto.deferred_file_id:  # built on click: run what a click would run
            return deferred[button.proto.deferred_file_id]()
        return seen[button.proto.url.rsplit("/", 1)[-1].split(".")[0]]

    return content
