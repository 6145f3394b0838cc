"""s3:// and gs:// stores against real local servers: moto in server mode (with IAM auth on) and a GCS emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
import requests
from streamlit.testing.v1 import AppTest

from dashboard.cli.main import main
from dashboard.errors import IntegrityError, ModelSourceError
from dashboard.store import fetch
from tests.support.helpers import DEMO, REPO, free_port, settings_for, sha256

SCHEMA = json.loads((DEMO / "manifest.json").read_text())["versions"][0]["schema"]
SAMPLE = DEMO / "sample.csv"


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or a slow first answer under load: retry
            time.sleep(0.1)
    raise AssertionError(f"{url} did not start within {seconds} s")


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """A local S3 API (moto server) that enforces credentials: an IAM user 'app' whose keys can use the bucket."""
    import boto3

    port = free_port()
    environ = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="4")  # the readiness GET and 3 IAM set-up calls
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(endpoint)
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="app")
        key = iam.create_access_key(UserName="app")["AccessKey"]
        iam.put_user_policy(
            UserName="app",
            PolicyName="store",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            ),
        )
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        s3.create_bucket(Bucket="models")
        yield {"endpoint": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "client": s3}
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="session")
def gcs():
    """A local GCS API (gcp-storage-emulator, in memory) with a bucket 'models'."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"http://127.0.0.1:{port}"
    try:
        wait_for(host)
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = host
        client = storage.Client(project="local", credentials=AnonymousCredentials())
        client.create_bucket("models")
        if previous is None:
            del os.environ["STORAGE_EMULATOR_HOST"]
        yield {"host": host, "client": client}
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def aws(env, moto):
    env.setenv("AWS_ENDPOINT_URL", moto["endpoint"])
    env.setenv("AWS_ACCESS_KEY_ID", moto["key"])
    env.setenv("AWS_SECRET_ACCESS_KEY", moto["secret"])
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto


@pytest.fixture
def google(env, gcs):
    env.setenv("STORAGE_EMULATOR_HOST", gcs["host"])
    return gcs


@pytest.fixture(params=["s3", "gs"])
def bucket(request):
    """(scheme, server info) with the matching credentials in the environment."""
    if request.param == "s3":
        return "s3", request.getfixturevalue("aws")
    return "gs", request.getfixturevalue("google")


def put_object(kind: str, server: dict, key: str, data: bytes) -> None:
    if kind == "s3":
        server["client"].put_object(Bucket="models", Key=key, Body=data)
    else:
        server["client"].bucket("models").blob(key).upload_from_string(data)


def publish_two(prefix: str, tmp_path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    for version, alias in (("1.0.0", ["--alias", "stable"]), ("1.1.0", [])):
        code = main(
            [
                "publish",
                str(DEMO / f"iris-{version}.keras"),
                "--version",
                version,
                "--store",
                prefix,
                "--schema",
                str(schema),
                "--notes",
                f"v{version}",
                *alias,
            ]
        )
        assert code == 0


def test_publish_to_a_private_bucket_then_list_and_predict(bucket, tmp_path, capsys, request):
    kind, server = bucket
    prefix = f"{kind}://models/{request.node.name.replace('[', '-').rstrip(']')}"
    publish_two(prefix, tmp_path)
    out = capsys.readouterr().out
    assert f"in {prefix}/manifest.json" in out
    assert f"serve it with: MODEL_MANIFEST_URL={prefix}/manifest.json\n" in out  # the exact value to set
    os.environ["MODEL_MANIFEST_URL"] = f"{prefix}/manifest.json"
    try:
        assert main(["versions"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [l.split()[0] for l in lines] == ["1.1.0", "1.0.0"] and lines[0].endswith("(default)")
        result = tmp_path / "out.csv"
        assert main(["predict", "--input", str(SAMPLE), "--output", str(result), "--version", "stable"]) == 0
        table = pd.read_csv(result)
        assert set(table["model_version"]) == {"1.0.0"} and (table["prediction"] == table["species"]).mean() >= 0.9
        # the dashboard, on the same bucket
        at = AppTest.from_file(str(REPO / "dashboard" / "ui" / "page.py"), default_timeout=120).run()
        assert not at.exception
        assert "**Version** 1.1.0" in "\n".join(m.value for m in at.sidebar.markdown)
        assert at.sidebar.caption[0].value == f"Models from: manifest {prefix}/manifest.json"
        at.button(key="single-submit").click().run()
        assert at.metric[0].value in ("setosa", "versicolor", "virginica")
    finally:
        del os.environ["MODEL_MANIFEST_URL"]
    captured = capsys.readouterr()
    if kind == "s3":
        assert server["secret"] not in captured.out + captured.err


def test_relative_urls_resolve_in_the_same_bucket_and_prefix(bucket, tmp_path):
    kind, server = bucket
    data = (DEMO / "iris-1.0.0.keras").read_bytes()
    put_object(kind, server, "rel/models/v1/model.keras", data)
    put_object(kind, server, "rel/models/schema.json", json.dumps(SCHEMA).encode())
    manifest = {
        "versions": [{"version": "1.0", "url": "v1/model.keras", "sha256": sha256(data), "schema_url": "schema.json"}]
    }
    put_object(kind, server, "rel/models/manifest.json", json.dumps(manifest).encode())
    from dashboard import service

    settings = service.settings()
    settings = type(settings)(
        **{**settings.__dict__, "manifest_url": f"{kind}://models/rel/models/manifest.json", "using_demo": False}
    )
    catalog = service.catalog(settings)
    assert catalog.default.model.url == f"{kind}://models/rel/models/v1/model.keras"
    served = service.load_version(settings, catalog.default)
    assert served.schema_source == "schema_url"
    assert (
        service.predict_row(
            served, {"sepal_length": 5, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2}
        ).table["prediction"][0]
        == "setosa"
    )


def test_missing_key_and_wrong_digest(bucket, tmp_path):
    kind, server = bucket
    settings = settings_for(
        tmp_path,
        **(
            {
                "AWS_ENDPOINT_URL": server["endpoint"],
                "AWS_ACCESS_KEY_ID": server["key"],
                "AWS_SECRET_ACCESS_KEY": server["secret"],
            }
            if kind == "s3"
            else {"STORAGE_EMULATOR_HOST": server["host"]}
        ),
    )
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(f"{kind}://models/nothing/here.keras", settings)
    assert (
        str(caught.value)
        == f"{kind}://models/nothing/here.keras was not found; check the key in the manifest or the URL"
    )
    data = (DEMO / "iris-1.0.0.keras").read_bytes()
    put_object(kind, server, "digest/cut.keras", data[: len(data) // 2])  # a truncated upload
    with pytest.raises(IntegrityError) as caught:
        fetch.fetch(f"{kind}://models/digest/cut.keras", settings, sha256(data))
    assert str(caught.value).startswith(f"sha256 of {kind}://models/digest/cut.keras is ")
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != ".lock"]
    assert leftovers == []
    path = fetch.fetch(f"{kind}://models/digest/cut.keras", settings)  # unpinned: fetched as it is
    assert path.read_bytes() == data[: len(data) // 2]


def test_wrong_s3_credentials_are_refused_without_showing_them(aws, tmp_path, capsys):
    aws["client"].put_object(Bucket="models", Key="auth/manifest.json", Body=b'{"versions": []}')
    os.environ["MODEL_MANIFEST_URL"] = "s3://models/auth/manifest.json"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "not-the-right-secret-value"
    try:
        assert main(["versions"]) == 1
        err = capsys.readouterr().err
        assert err == (
            "error: access denied for s3://models/auth/manifest.json: check the AWS_* config vars and "
            "the bucket policy\n"
        )
        os.environ["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000"
        assert main(["versions"]) == 1
        err = capsys.readouterr().err
        assert "access denied" in err and "AKIAUNKNOWNKEY" not in err and "not-the-right" not in err
    finally:
        del os.environ["MODEL_MANIFEST_URL"]


def test_no_secret_key_value_appears_anywhere(aws, tmp_path, capsys, caplog):
    """Run the whole path with debug output and logs on, and look for the secret key in everything produced."""
    caplog.set_level("DEBUG")
    publish_two("s3://models/scan", tmp_path)
    os.environ["MODEL_MANIFEST_URL"] = "s3://models/scan/manifest.json"
    try:
        assert main(["--debug", "predict", "--input", str(SAMPLE), "--output", str(tmp_path / "o.csv")]) == 0
        os.environ["AWS_SECRET_ACCESS_KEY"] = aws["secret"][:-1] + "x"
        assert main(["--debug", "versions"]) == 1
    finally:
        del os.environ["MODEL_MANIFEST_URL"]
    captured = capsys.readouterr()
    produced = captured.out + captured.err + caplog.text + (tmp_path / "o.csv").read_text()
    assert aws["secret"] not in produced and aws["secret"][:-1] not in produced
    import re

    assert not re.search(r"Signature=[0-9a-f]{16}", produced), "a request signature was logged"
    assert aws["key"] not in produced, "the access key id was logged"
    assert "Signature=[redacted]" in produced  # debug logs were on and did pass through the redaction


def test_concurrent_publishers_never_lose_an_entry_in_a_bucket(aws):
    """Eight publishers adding a model each to one catalog.json at once: conditional writes (If-Match /
    If-None-Match), retried, keep all. S3 only: the GCS emulator ignores ifGenerationMatch (a write with a wrong
    generation is accepted there), so it cannot tell the GCS path's precondition from none."""
    from dashboard.service.publish import add_to_catalog
    from tests.support.helpers import at_once

    prefix = "s3://models/race"
    names = [f"model-{i}" for i in range(8)]
    at_once(len(names), lambda i: add_to_catalog(prefix, names[i], f"number {i}"))
    from dashboard import service

    catalog = json.loads(fetch.read_bytes(f"{prefix}/catalog.json", service.settings()))
    assert sorted(m["name"] for m in catalog["models"]) == sorted(names)
    assert {m["manifest_url"] for m in catalog["models"]} == {f"{n}/manifest.json" for n in names}
