from __future__ import annotations

import json

import pytest
from packaging.version import Version

from dashboard.common.urls import resolve
from dashboard.errors import ManifestError, ModelSourceError
from dashboard.store.manifest import parse_manifest
from dashboard.store.sources import load_catalog
from dashboard.store.versions import ModelVersion, choose
from tests.support.helpers import settings_for, write_manifest

HEX = "a" * 64


def versions(*labels):
    return tuple(ModelVersion(version=Version(v), kind="file", origin="test") for v in labels)


ALL = versions("0.9.0", "1.0.0", "1.1.0", "1.2.0", "2.0.0rc1")
ALIASES = {"stable": "1.0.0", "next": "2.0.0rc1"}


@pytest.mark.parametrize(
    "requested, chosen, warning",
    [
        (None, "1.2.0", None),
        ("latest", "1.2.0", None),
        ("1.1.0", "1.1.0", None),
        ("1.1", "1.1.0", None),  # PEP 440 equality: 1.1 == 1.1.0
        ("2.0.0rc1", "2.0.0rc1", None),  # a pre-release asked for exactly
        ("stable", "1.0.0", None),
        ("next", "2.0.0rc1", None),
        ("~=1.0", "1.2.0", None),
        (">=1,<1.2", "1.1.0", None),
        (">=2.0.0rc1", "1.2.0", "no version matches >=2.0.0rc1 (MODEL_VERSION); using the newest, 1.2.0"),
        ("3.0.0", "1.2.0", "version 3.0.0 was asked for (MODEL_VERSION) but does not exist; using the newest, 1.2.0"),
        ("==5.*", "1.2.0", "no version matches ==5.* (MODEL_VERSION); using the newest, 1.2.0"),
        (
            "best",
            "1.2.0",
            "MODEL_VERSION='best' is not a version, an alias (next, stable) or a PEP 440 specifier "
            "such as ~=1.2; using the newest, 1.2.0",
        ),
    ],
)
def test_version_selection_follows_spec(requested, chosen, warning):
    version, message = choose(ALL, ALIASES, requested)
    assert version.label == chosen
    assert message == warning


def test_only_pre_releases_means_the_newest_pre_release():
    version, warning = choose(versions("1.0.0rc1", "1.0.0rc2"), {}, None)
    assert (version.label, warning) == ("1.0.0rc2", None)


def test_manifest_relative_urls_resolve_against_the_manifest():
    data = {
        "versions": [
            {"version": "1.0.0", "url": "files/m.keras", "sha256": HEX.upper()},
            {
                "version": "0.9",
                "architecture_url": "a.json",
                "weights_url": "../w.weights.h5",
                "sha256": {"architecture_url": HEX, "weights_url": HEX},
                "schema_url": "s.json",
            },
        ],
        "aliases": {"stable": "1.0"},
        "unknown": "ignored",
    }
    found, aliases, name = parse_manifest(data, "https://h/store/manifest.json?X-Amz-Signature=secret")
    assert found[0].model.url == "https://h/store/files/m.keras"
    assert found[0].model.sha256 == HEX
    assert found[1].architecture.url == "https://h/store/a.json"
    assert found[1].weights.url == "https://h/w.weights.h5"
    assert found[1].schema_url == "https://h/store/s.json"
    assert aliases == {"stable": "1.0"}
    assert name == "model"


@pytest.mark.parametrize(
    "base, ref, expected",
    [
        ("s3://bucket/models/manifest.json", "v1/m.keras", "s3://bucket/models/v1/m.keras"),
        ("gs://bucket/manifest.json", "m.keras", "gs://bucket/m.keras"),
        ("file:///srv/store/manifest.json", "m.keras", "file:///srv/store/m.keras"),
        ("/srv/store/manifest.json", "m.keras", "/srv/store/m.keras"),
        ("https://h/a/manifest.json", "https://other/m.keras", "https://other/m.keras"),
    ],
)
def test_resolve(base, ref, expected):
    assert resolve(base, ref) == expected


def test_a_remote_manifest_cannot_point_at_local_files():
    with pytest.raises(ModelSourceError, match="refers to a local file"):
        resolve("https://h/manifest.json", "file:///etc/passwd")


M = "manifest https://h/manifest.json"


@pytest.mark.parametrize(
    "data, message",
    [
        ([], f'{M} must be a JSON object with a "versions" list'),
        ({"versions": []}, f"{M} lists no versions; publish one with python -m dashboard publish"),
        (
            {"versions": [{"url": "m.keras"}]},
            f'{M}, versions[0]: "version" is missing; add a PEP 440 version such as "1.2.0"',
        ),
        (
            {"versions": [{"version": "one", "url": "m.keras"}]},
            f"{M}, versions[0] (version 'one'): 'one' is not a PEP 440 version; use a form such as \"1.2.0\"",
        ),
        (
            {"versions": [{"version": "1.0"}]},
            f"{M}, versions[0] (version '1.0'): needs \"url\" (a .keras or .h5 file) "
            'or both "architecture_url" and "weights_url"',
        ),
        (
            {"versions": [{"version": "1.0", "url": "m.keras", "sha256": "abc"}]},
            f"{M}, versions[0] (version '1.0'): \"sha256\" must be 64 hexadecimal characters (sha256sum of the file)",
        ),
        (
            {"versions": [{"version": "1.0", "url": "m.keras"}, {"version": "1.0.0", "url": "n.keras"}]},
            f"version 1.0.0 is defined twice: in {M} and in {M}; remove one of them or give it another version",
        ),
        (
            {"versions": [{"version": "1.0", "url": "m.keras"}], "aliases": {"stable": "2.0"}},
            f"{M}: alias 'stable' points to 2.0, which is not listed; listed versions: 1.0",
        ),
        (
            {"versions": [{"version": "1.0", "url": "m.keras", "builder": "os:system"}]},
            f"{M}, versions[0] (version '1.0'): \"builder\" is not allowed in a manifest (it would run code named by "
            "a remote file); set MODEL_BUILDER in the app's own configuration instead",
        ),
    ],
)
def test_malformed_manifests_are_one_clear_error(data, message):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, "https://h/manifest.json")
    assert str(caught.value) == message


def test_manifest_that_is_not_json(store, tmp_path):
    url = store.put("m/manifest.json", b"{not json")
    with pytest.raises(ManifestError, match=r"^manifest http://127.0.0.1:\d+/m/manifest.json is not valid JSON"):
        load_catalog(settings_for(tmp_path, MODEL_MANIFEST_URL=url))


def test_every_source_type_together(store, tmp_path):
    manifest = write_manifest(store, [{"version": "3.0.0", "url": "a.keras"}])
    settings = settings_for(
        tmp_path,
        MODEL_MANIFEST_URL=manifest,
        MODEL_URL_V1="one.keras",
        MODEL_URL_V2_1="two.keras",
        MODEL_ARCHITECTURE_URL="a.json",
        MODEL_WEIGHTS_URL="w.weights.h5",
        MODEL_VERSION="0.5",
    )
    catalog = load_catalog(settings)
    assert catalog.labels == ["3.0.0", "2.1", "1", "0.5"]
    assert [v.kind for v in catalog.versions] == ["file", "file", "file", "architecture"]
    assert catalog.default.label == "0.5"
    assert [v.origin for v in catalog.versions][1:] == ["MODEL_URL_V2_1", "MODEL_URL_V1", "MODEL_ARCHITECTURE_URL"]


def test_single_model_url_is_version_1_or_the_exact_model_version(tmp_path):
    assert load_catalog(settings_for(tmp_path, MODEL_URL="m.keras")).labels == ["1"]
    assert load_catalog(settings_for(tmp_path, MODEL_URL="m.keras", MODEL_VERSION="2.3.0")).labels == ["2.3.0"]
    catalog = load_catalog(settings_for(tmp_path, MODEL_URL="m.keras", MODEL_VERSION="~=2.0"))
    assert catalog.labels == ["1"]
    assert catalog.warning == "no version matches ~=2.0 (MODEL_VERSION); using the newest, 1"


def test_one_version_from_two_sources_names_both_places(store, tmp_path):
    manifest = write_manifest(store, [{"version": "1.0.0", "url": "a.keras"}])
    with pytest.raises(ManifestError) as caught:
        load_catalog(settings_for(tmp_path, MODEL_MANIFEST_URL=manifest, MODEL_URL_V1="b.keras"))
    assert str(caught.value) == (
        f"version 1 is defined twice: in manifest {manifest} and in MODEL_URL_V1; "
        "remove one of them or give it another version"
    )


def test_demo_catalog_without_configuration(tmp_path):
    catalog = load_catalog(settings_for(tmp_path))
    assert catalog.labels == ["1.1.0", "1.0.0"]
    assert catalog.default.label == "1.1.0"
    assert catalog.aliases == {"stable": "1.0.0"}
    assert catalog.source == "embedded demo store"
    assert all(v.pinned for v in catalog.versions)


def test_manifest_json_schema_accepts_the_demo_and_rejects_a_broken_manifest():
    import jsonschema
    from referencing import Registry, Resource

    from tests.support.helpers import DEMO, REPO

    folder = REPO / "dashboard" / "schemas"
    loaded = {
        name: json.loads((folder / name).read_text()) for name in ("manifest.schema.json", "model-schema.schema.json")
    }
    registry = Registry().with_resources([(n, Resource.from_contents(s)) for n, s in loaded.items()])
    validator = jsonschema.Draft202012Validator(loaded["manifest.schema.json"], registry=registry)
    validator.validate(json.loads((DEMO / "manifest.json").read_text()))
    assert not list(validator.iter_errors({"versions": [{"version": "1", "url": "m.keras", "sha256": "a" * 64}]}))
    broken = {
        "versions": [
            {"url": "m.keras"},
            {"version": "1", "url": "m.keras", "sha256": "xyz"},
            {"version": "2", "url": "m.keras", "schema": {"features": []}},
        ]
    }
    messages = sorted(e.message for e in validator.iter_errors(broken))
    assert "'version' is a required property" in messages
    assert len(list(validator.iter_errors(broken))) >= 3
