from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from dashboard.common import urls
from dashboard.errors import IntegrityError, ModelSourceError
from dashboard.store import fetch
from tests.support.helpers import free_port, settings_for, sha256

BODY = os.urandom(300_000)
SECRET = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeefcafe"


def cache_files(tmp_path):
    root = tmp_path / "cache"
    return (
        sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != ".lock")
        if root.exists()
        else []
    )


def test_pinned_download_is_verified_cached_and_not_fetched_again(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    settings = settings_for(tmp_path)
    seen = []
    path = fetch.fetch(url + "?" + SECRET, settings, sha256(BODY), lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == BODY
    assert path.name == "model.keras"
    assert seen[-1] == (len(BODY), len(BODY))
    again = fetch.fetch(url, settings, sha256(BODY).upper())
    assert again == path
    assert store.hits("m/model.keras") == 1
    assert cache_files(tmp_path) == [f"sha256/{sha256(BODY)}/model.keras"]


def test_request_asks_for_identity_encoding(store, tmp_path):
    import http.server

    seen = {}
    original = store.server.RequestHandlerClass.do_GET

    def spy(handler):
        seen["encoding"] = handler.headers.get("Accept-Encoding")
        return original(handler)

    store.server.RequestHandlerClass.do_GET = spy
    try:
        fetch.read_bytes(store.put("a.json", b"{}"), settings_for(tmp_path))
    finally:
        store.server.RequestHandlerClass.do_GET = original
    assert seen["encoding"] == "identity"
    assert isinstance(store.server, http.server.ThreadingHTTPServer)


def test_wrong_sha256_leaves_nothing_in_the_cache(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    with pytest.raises(IntegrityError) as caught:
        fetch.fetch(url + "?" + SECRET, settings_for(tmp_path), "0" * 64)
    assert str(caught.value) == (
        f"sha256 of {url} is {sha256(BODY)[:12]}…, expected 000000000000…; the download "
        "is not the published file: republish it or fix the sha256 in the manifest"
    )
    assert cache_files(tmp_path) == []


def test_truncated_body_leaves_nothing_in_the_cache(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    store.fault("m/model.keras", "truncate")
    with pytest.raises(IntegrityError, match=r"^download of http://127\.0\.0\.1:\d+/m/model\.keras was cut off"):
        fetch.fetch(url + "?" + SECRET, settings_for(tmp_path), sha256(BODY))
    assert cache_files(tmp_path) == []
    with pytest.raises(IntegrityError):  # unpinned too: the length check catches it
        fetch.fetch(url, settings_for(tmp_path))
    assert cache_files(tmp_path) == []


def test_404_is_not_retried(store, tmp_path):
    url = store.url("m/missing.keras")
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url + "?" + SECRET, settings_for(tmp_path))
    assert str(caught.value) == f"{url} was not found (HTTP 404); check the URL or the manifest entry"
    assert store.hits("m/missing.keras") == 1


def test_500_then_ok_is_retried(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    store.fault("m/model.keras", ["500", "500"])
    path = fetch.fetch(url, settings_for(tmp_path, MODEL_RETRIES=2), sha256(BODY))
    assert path.read_bytes() == BODY
    assert store.hits("m/model.keras") == 3


def test_persistent_500_gives_up_after_the_retries(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    store.fault("m/model.keras", "500")
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url, settings_for(tmp_path, MODEL_RETRIES=2), sha256(BODY))
    assert str(caught.value) == f"{url} is unreachable: the server answered HTTP 500 (tried 3 times); try again later"
    assert store.hits("m/model.keras") == 3
    assert cache_files(tmp_path) == []


def test_expired_presigned_link_says_so_without_the_signature(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    store.fault("m/model.keras", "403")
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url + "?" + SECRET, settings_for(tmp_path))
    assert str(caught.value).startswith(f"access to {url} was denied (HTTP 403); a presigned link may have expired")
    assert "Signature" not in str(caught.value) and "AKIA" not in str(caught.value)


def test_connection_refused_is_unreachable_and_redacted(tmp_path):
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/m.keras?{SECRET}"
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url, settings_for(tmp_path, MODEL_RETRIES=1))
    message = str(caught.value)
    assert message.startswith("http://127.0.0.1:") and "is unreachable (connection refused)" in message
    assert "hunter2" not in message and "Signature" not in message


def test_a_server_that_never_answers_is_bounded_by_the_read_timeout(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    store.fault("m/model.keras", "hang")
    started = time.monotonic()
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url, settings_for(tmp_path, MODEL_READ_TIMEOUT=0.5))
    assert str(caught.value) == (
        f"{url} is unreachable: no answer within 0.5 s (MODEL_READ_TIMEOUT); check that the server is up"
    )
    assert time.monotonic() - started < 4.5  # the hang is 5 s: the timeout, not the server, ended the wait
    assert store.hits("m/model.keras") == 1


def test_over_the_size_cap_is_refused_from_content_length(store, tmp_path):
    url = store.put("m/model.keras", BODY)
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url, settings_for(tmp_path, MODEL_MAX_BYTES=100_000))
    assert str(caught.value) == (
        f"{url} is 293 KiB, over the 97.7 KiB limit; raise MODEL_MAX_BYTES if this file is expected to be that large"
    )
    assert cache_files(tmp_path) == []


def test_over_the_size_cap_is_refused_while_streaming_without_content_length(store, tmp_path):
    url = store.put("m/big.keras", b"x")
    store.fault("m/big.keras", "big")
    with pytest.raises(ModelSourceError, match="over the 1 MiB limit"):
        fetch.fetch(url, settings_for(tmp_path, MODEL_MAX_BYTES=1 << 20))
    assert cache_files(tmp_path) == []


def test_read_only_cache_folder_is_a_clear_error(store, tmp_path):
    if os.geteuid() == 0:
        cache = "/proc/keras-dashboard-cache"  # not creatable, even for root
    else:
        cache = tmp_path / "ro"
        cache.mkdir(mode=0o500)
    url = store.put("m/model.keras", BODY)
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url, settings_for(tmp_path, MODEL_CACHE_DIR=cache))
    assert "is not writable" in str(caught.value) and "set MODEL_CACHE_DIR to a writable folder" in str(caught.value)


def test_local_paths_and_file_urls_are_used_in_place_and_checked(tmp_path):
    source = tmp_path / "model.keras"
    source.write_bytes(BODY)
    settings = settings_for(tmp_path)
    assert fetch.fetch(str(source), settings, sha256(BODY)) == source
    assert fetch.fetch(source.as_uri(), settings) == source
    with pytest.raises(IntegrityError, match="the file on disk is not the published file"):
        fetch.fetch(str(source), settings, "1" * 64)
    with pytest.raises(ModelSourceError, match="does not exist or is not a file; check the path"):
        fetch.fetch(str(tmp_path / "nope.keras"), settings)


def _fetch_in_child(url, cache, digest, queue):
    settings = settings_for(cache.parent, MODEL_CACHE_DIR=cache)
    queue.put(str(fetch.fetch(url, settings, digest)))


def test_two_processes_fetching_the_same_file_download_it_once(store, tmp_path):
    url = store.put("m/model.keras", BODY * 10)
    store.fault("m/model.keras", "slow")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    children = [
        context.Process(target=_fetch_in_child, args=(url, tmp_path / "cache", sha256(BODY * 10), queue))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    paths = {queue.get(timeout=5) for _ in children}
    assert len(paths) == 1
    assert open(paths.pop(), "rb").read() == BODY * 10
    assert store.hits("m/model.keras") == 1
    assert cache_files(tmp_path) == [f"sha256/{sha256(BODY * 10)}/model.keras"]


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            "https://bucket.s3.amazonaws.com/m.keras?X-Amz-Signature=abc&X-Amz-Credential=AKIA",
            "https://bucket.s3.amazonaws.com/m.keras",
        ),
        ("https://user:password@host/m.keras#frag", "https://host/m.keras"),
        ("https://storage.googleapis.com/b/m.keras?X-Goog-Signature=abc", "https://storage.googleapis.com/b/m.keras"),
        ("https://acct.blob.core.windows.net/c/m.keras?sv=1&sig=abc", "https://acct.blob.core.windows.net/c/m.keras"),
        ("/srv/models/m.keras", "/srv/models/m.keras"),
    ],
)
def test_redact(url, shown):
    assert urls.redact(url) == shown


def test_scrub_removes_secrets_inside_free_text():
    from dashboard.errors import scrub

    text = (
        "HTTPSConnectionPool(host='h', port=443): Max retries exceeded with url: "
        "/m.keras?X-Amz-Signature=abc (Caused by https://u:p@h/x?sig=1)"
    )
    cleaned = scrub(text)
    for secret in ("X-Amz-Signature", "sig=", "u:p@"):
        assert secret not in cleaned
    assert "https://h/x" in cleaned
