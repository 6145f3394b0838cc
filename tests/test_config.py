from __future__ import annotations

import pytest

from dashboard.config import DEMO_MANIFEST, load_settings
from dashboard.errors import ConfigError


def test_no_configuration_uses_the_embedded_demo_store(tmp_path):
    settings = load_settings({"HOME": str(tmp_path)}, secrets={})
    assert settings.using_demo
    assert settings.manifest_url == str(DEMO_MANIFEST)
    assert settings.cache_dir == tmp_path / ".cache" / "keras-dashboard"
    assert settings.safe_mode is True


def test_environment_wins_over_secrets_and_secrets_fill_gaps(tmp_path):
    settings = load_settings(
        {"MODEL_URL": "https://env/model.keras", "HOME": str(tmp_path)},
        secrets={"MODEL_URL": "https://secret/model.keras", "MODEL_VERSION": "2.0.0"},
    )
    assert settings.model_url == "https://env/model.keras"
    assert settings.model_version == "2.0.0"
    assert not settings.using_demo


def test_secrets_file_in_the_project_folder_is_read(tmp_path, monkeypatch):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('MODEL_MANIFEST_URL = "https://s/manifest.json"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings({"HOME": str(tmp_path / "home")}).manifest_url == "https://s/manifest.json"


def test_versioned_urls_and_their_digests():
    settings = load_settings(
        {
            "MODEL_URL_V1": "a.keras",
            "MODEL_URL_V1_2_0": "b.keras",
            "MODEL_SHA256_V1_2_0": "ab" * 32,
            "MODEL_URL_V2_0_0RC1": "c.keras",
        },
        secrets={},
    )
    assert settings.versioned_urls == (
        ("1", "a.keras", None),
        ("1.2.0", "b.keras", "ab" * 32),
        ("2.0.0rc1", "c.keras", None),
    )


def test_app_version_is_accepted_when_model_version_is_unset():
    assert load_settings({"APP_VERSION": "1.1.0"}, secrets={}).model_version == "1.1.0"
    assert load_settings({"APP_VERSION": "1.1.0", "MODEL_VERSION": "2"}, secrets={}).model_version == "2"


@pytest.mark.parametrize(
    "environ, message",
    [
        (
            {"MODEL_ARCHITECTURE_URL": "a.json"},
            "MODEL_ARCHITECTURE_URL is set but MODEL_WEIGHTS_URL is not; set MODEL_WEIGHTS_URL to the .weights.h5 file "
            "saved with the architecture",
        ),
        (
            {"MODEL_WEIGHTS_URL": "w.weights.h5"},
            "MODEL_WEIGHTS_URL is set without MODEL_ARCHITECTURE_URL or MODEL_BUILDER; set one of them so the weights "
            "have a model to go into",
        ),
        (
            {"MODEL_URL": "m.keras", "MODEL_SHA256": "xyz"},
            "MODEL_SHA256 must be 64 hexadecimal characters (the output of sha256sum)",
        ),
        ({"MODEL_SAFE_MODE": "maybe"}, "MODEL_SAFE_MODE='maybe' is not a yes/no value; use true or false"),
        ({"CSV_MAX_ROWS": "many"}, "CSV_MAX_ROWS='many' is not a whole number; use for example 200000"),
    ],
)
def test_bad_configuration_is_one_clear_error(environ, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, secrets={})
    assert str(caught.value) == message


def test_safe_mode_can_only_be_turned_off_explicitly():
    assert load_settings({"MODEL_SAFE_MODE": "false"}, secrets={}).safe_mode is False
    assert load_settings({}, secrets={}).safe_mode is True
