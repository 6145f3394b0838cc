"""Issue 26: image models through the core, the CLI, the lean runtime and the HTTP API — real small CNNs, real
image files of every format, a corrupt file and a decompression bomb; every answer compared with Keras's own on the
same pixels (computed here with Pillow, independently of the dashboard's decoding)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image

from tests.support import dashboard_server
from tests.support.helpers import REPO

FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP"}


def encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def picture(seed: int, size=(30, 20), mode="RGB") -> np.ndarray:
    """A smooth random picture (JPEG keeps it close), height x width (x 3)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 4, 3) if mode == "RGB" else (4, 4), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares width x height pixels (a few bytes on disk: a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\0" * 64)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + header + idat + end


def keras_pixels(data: bytes, size: tuple[int, int], mode: str) -> np.ndarray:
    """What the schema's default preprocessing should give: Pillow stretch to size, pixels 0..255."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    array = np.asarray(image.convert(mode).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    return array if array.ndim == 3 else array[:, :, None]


@pytest.fixture(scope="module")
def cnns(tmp_path_factory):
    """An RGB classifier (16x16x3), a grayscale model of input (12, 12) and an image + number model."""
    import keras

    folder = tmp_path_factory.mktemp("cnns")
    keras.utils.set_random_seed(3)
    x = inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    rgb = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    rgb.save(folder / "rgb.keras")

    x = inputs = keras.Input((12, 12))
    x = keras.layers.Reshape((12, 12, 1))(keras.layers.Rescaling(1 / 255)(x))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3, activation="relu")(x))
    gray = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    gray.save(folder / "gray.keras")

    photo, age = keras.Input((8, 8, 1), name="photo"), keras.Input((1,), name="age")
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(photo))
    x = keras.layers.Concatenate()([x, keras.layers.Rescaling(1 / 100)(age)])
    mixed = keras.Model({"photo": photo, "age": age}, keras.layers.Dense(2, activation="softmax")(x))
    mixed.save(folder / "mixed.keras")
    return {"folder": folder, "rgb": rgb, "gray": gray, "mixed": mixed}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder of every format (RGB, RGBA, grayscale, a rotated JPEG, a GIF of two frames), a corrupt file, a text
    file and a bomb; plus the same as a zip."""
    folder = tmp_path_factory.mktemp("images")
    for i, (suffix, fmt) in enumerate(FORMATS.items()):
        (folder / f"p{i}.{suffix}").write_bytes(encoded(picture(i), fmt, **({"quality": 95} if fmt == "JPEG" else {})))
    rgba = np.dstack([picture(10), np.full((20, 30), 40, np.uint8)])
    (folder / "alpha.png").write_bytes(encoded(rgba, "PNG"))
    (folder / "gray.png").write_bytes(encoded(picture(11, mode="L"), "PNG"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    buffer = io.BytesIO()
    Image.fromarray(picture(12)).save(buffer, "JPEG", quality=95, exif=exif)
    (folder / "rotated.jpg").write_bytes(buffer.getvalue())
    frames = [Image.fromarray(picture(13)), Image.fromarray(picture(14))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    (folder / "animated.gif").write_bytes(buffer.getvalue())
    (folder / "corrupt.jpg").write_bytes(encoded(picture(15), "JPEG")[:200])
    (folder / "notes.txt").write_text("not an image")
    (folder / "bomb.png").write_bytes(bomb_png())
    (folder / ".hidden.png").write_bytes(encoded(picture(16), "PNG"))
    archive = folder.parent / "images.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        for path in sorted(folder.iterdir()):
            packed.write(path, f"shots/{path.name}")
    return {"folder": folder, "zip": archive}


GOOD = ["alpha.png", "animated.gif", "gray.png", "p0.png", "p1.jpg", "p2.webp", "p3.gif", "p4.bmp", "rotated.jpg"]
BAD = {"bomb.png": "IMAGE_MAX_PIXELS", "corrupt.jpg": "damaged", "notes.txt": "not an image"}


def expected_rgb(cnns, folder: Path, names: list[str]) -> np.ndarray:
    pixels = np.stack([keras_pixels((folder / name).read_bytes(), (16, 16), "RGB") for name in names])
    return cnns["rgb"].predict(pixels, verbose=0)


def test_schema_inferred_from_image_inputs_and_checked(cnns):
    from dashboard.errors import SchemaError
    from dashboard.loading import keras_model
    from dashboard.prediction import images
    from dashboard.prediction.schema import check_against_model, infer_schema, parse_schema

    folder = cnns["folder"]
    rgb = keras_model.load("file", {"model": folder / "rgb.keras"})
    schema = infer_schema(rgb)
    assert schema.to_dict()["features"] == [
        {"name": "image", "type": "image", "height": 16, "width": 16, "channels": 3, "scale": "0..255",
         "resize": "stretch"}
    ]  # fmt: skip
    assert images.describe(schema.features[0]) == "16×16 RGB, pixels 0–255, stretched"
    assert parse_schema(schema.to_dict()) == schema.__class__(schema.features, schema.output)
    gray = keras_model.load("file", {"model": folder / "gray.keras"})
    assert infer_schema(gray).features[0].channels == 1
    mixed = keras_model.load("file", {"model": folder / "mixed.keras"})
    found = {f.name: f.type for f in infer_schema(mixed).features}
    assert found == {"photo": "image", "age": "number"}
    wrong = parse_schema(
        {"features": [{"name": "image", "type": "image", "height": 32, "width": 16}],
         "output": {"type": "classification", "labels": ["a", "b", "c"]}}
    )  # fmt: skip
    with pytest.raises(SchemaError, match="is 32×16 with 3 channel.*the model takes 16×16 with 3"):
        check_against_model(wrong, rgb)
    with pytest.raises(SchemaError, match='"channels" must be 1'):
        parse_schema({"features": [{"name": "i", "type": "image", "height": 4, "width": 4, "channels": 4}],
                      "output": {"type": "regression"}})  # fmt: skip


def test_every_format_decodes_as_keras_expects_and_bad_files_are_row_errors(cnns, files, image_store, tmp_path):
    """Through the service seam: one table of every file, good ones predicted as Keras predicts the same pixels
    (EXIF rotation applied, alpha dropped, grayscale to RGB, GIF first frame), bad ones that row's error."""
    from dashboard import service
    from dashboard.prediction.reading import image_files

    settings = service.settings(
        {"MODEL_MANIFEST_URL": str(image_store / "rgb" / "manifest.json"), "MODEL_CACHE_DIR": str(tmp_path)}
    )
    served = service.load_version(settings, service.catalog(settings).default)
    table = image_files.image_table(image_files.folder_files(files["folder"]), "image")
    result = service.predict_table(served, table)
    frame = result.table
    assert list(frame.columns[:2]) == ["file", "prediction"]
    assert ".hidden.png" not in set(frame["file"])
    good = frame[frame["error"] == ""]
    assert list(good["file"]) == GOOD
    np.testing.assert_allclose(result.values, expected_rgb(cnns, files["folder"], GOOD), rtol=1e-5, atol=1e-6)
    for name, words in BAD.items():
        assert words in frame.loc[frame["file"] == name, "error"].item(), name
    rotated = keras_pixels((files["folder"] / "rotated.jpg").read_bytes(), (16, 16), "RGB")
    plain = np.asarray(Image.open(files["folder"] / "rotated.jpg").convert("RGB").resize((16, 16)), np.float32)
    assert not np.allclose(rotated, plain)  # the orientation tag mattered


def run_cli(*args, env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "HISTORY", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args], cwd=REPO, env=environ | env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


@pytest.fixture(scope="module")
def image_store(cnns, tmp_path_factory):
    """The RGB and mixed CNNs published in stores (the RGB one with its LiteRT artifact: --lean)."""
    from dashboard.config import load_settings
    from dashboard.service.publish import PublishOptions, publish

    root = tmp_path_factory.mktemp("stores")
    settings = load_settings({"MODEL_CACHE_DIR": str(root / "cache")}, secrets={})
    publish(cnns["folder"] / "rgb.keras", "1.0.0", str(root / "rgb"), PublishOptions(lean=True), settings)
    publish(cnns["folder"] / "mixed.keras", "1.0.0", str(root / "mixed"), settings=settings)
    return root


def test_cli_predicts_a_folder_a_zip_and_a_csv_of_paths(cnns, files, image_store, tmp_path):
    env = {"MODEL_MANIFEST_URL": str(image_store / "rgb" / "manifest.json"), "MODEL_CACHE_DIR": str(tmp_path / "c")}
    env["HISTORY"] = "off"
    expected = expected_rgb(cnns, files["folder"], GOOD)
    for source, prefix in ((files["folder"], ""), (files["zip"], "shots/")):
        out = tmp_path / "out.csv"
        done = run_cli("predict", "--input", str(source), "--output", str(out), env=env)
        assert done.returncode == 0, done.stderr
        assert f"predicted {len(GOOD)} of {len(GOOD) + len(BAD)} images" in done.stderr
        table = pd.read_csv(out, keep_default_na=False)
        assert list(table.columns) == ["file", "prediction", "probability_0", "probability_1", "probability_2",
                                       "model_version", "error"]  # fmt: skip
        good = table[table["error"] == ""]
        assert list(good["file"]) == [prefix + name for name in GOOD]
        got = good[["probability_0", "probability_1", "probability_2"]].to_numpy(float)
        np.testing.assert_allclose(got, expected, atol=2e-6)  # downloads round probabilities to 6 places
    shutil.copytree(files["folder"], tmp_path / "pics")
    listing, rel = tmp_path / "list.csv", "pics"
    # a path leaving the CSV's folder is refused as a row error, even when it names a real image
    outside = os.path.relpath(files["folder"] / "p0.png", tmp_path)
    listing.write_text(f"image,note\n{rel}/p0.png,a\n{rel}/nothere.png,b\n{outside},c\n{rel}/p4.bmp,d\n")
    out = tmp_path / "listed.csv"
    done = run_cli("predict", "--input", str(listing), "--output", str(out), env=env)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table["image"]) == [f"{rel}/p0.png", f"{rel}/nothere.png", outside, f"{rel}/p4.bmp"]
    assert list(table["error"] != "") == [False, True, True, False]
    assert "is not an image file found beside the table" in table["error"][2]
    got = table.loc[[0, 3], ["probability_0", "probability_1", "probability_2"]].to_numpy(float)
    np.testing.assert_allclose(got, expected_rgb(cnns, files["folder"], ["p0.png", "p4.bmp"]), atol=2e-6)


def test_lean_runtime_serves_the_cnn_with_pillow_only(cnns, files, image_store, tmp_path):
    """publish --lean converted the CNN with its parity check; the lean stack (TensorFlow blocked) predicts the
    folder with the same answers as Keras."""
    from tests.support.helpers import NO_TENSORFLOW

    manifest = json.loads((image_store / "rgb" / "manifest.json").read_text())
    assert manifest["versions"][0].get("tflite_url"), manifest
    out = tmp_path / "lean.csv"
    script = NO_TENSORFLOW + "import sys; from dashboard.cli.main import main; sys.exit(main())"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "HISTORY"))}
    environ |= {"MODEL_MANIFEST_URL": str(image_store / "rgb" / "manifest.json"), "MODEL_RUNTIME": "litert"}
    environ |= {"MODEL_CACHE_DIR": str(tmp_path / "c"), "HISTORY": "off"}
    command = [sys.executable, "-c", script, "predict", "--input", str(files["folder"]), "--output", str(out)]
    done = subprocess.run(command, cwd=REPO, env=environ, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out, keep_default_na=False)
    good = table[table["error"] == ""]
    assert list(good["file"]) == GOOD
    got = good[["probability_0", "probability_1", "probability_2"]].to_numpy(float)
    np.testing.assert_allclose(got, expected_rgb(cnns, files["folder"], GOOD), atol=1e-4)


@pytest.fixture(scope="module")
def image_server(image_store, tmp_path_factory):
    """The dashboard serving the RGB CNN (history in SQLite)."""
    folder = tmp_path_factory.mktemp("image-server")
    running = dashboard_server.start(
        folder,
        {
            "MODEL_MANIFEST_URL": str(image_store / "rgb" / "manifest.json"),
            "DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
            "IMAGE_MAX_PIXELS": "1000000",
        },
    )
    running.wait_ready()
    yield running
    running.stop()


def test_api_takes_b64_values_multipart_and_raw_images(cnns, files, image_server):
    base, folder = image_server.base, files["folder"]
    names = ["p0.png", "p1.jpg", "p2.webp"]
    expected = expected_rgb(cnns, folder, names)
    b64 = [{"b64": base64.b64encode((folder / n).read_bytes()).decode()} for n in names]

    def probabilities(answer: requests.Response) -> np.ndarray:
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        return np.array([[p["probabilities"][k] for k in "012"] for p in answer.json()["predictions"]])

    native = requests.post(base + "/api/v1/predict", json={"instances": [{"image": v} for v in b64]}, timeout=60)
    np.testing.assert_allclose(probabilities(native), expected, rtol=1e-5, atol=1e-6)
    assert native.json().get("prediction_id")
    bare = requests.post(base + "/api/v1/predict", json={"instances": b64}, timeout=60)  # TF Serving's row form
    np.testing.assert_allclose(probabilities(bare), expected, rtol=1e-5, atol=1e-6)
    tf = requests.post(base + "/v1/models/rgb:predict", json={"instances": b64}, timeout=60)
    assert tf.status_code == 200, tf.text
    np.testing.assert_allclose(np.array(tf.json()["predictions"]), expected, rtol=1e-5, atol=1e-6)
    form = [("image", (n, (folder / n).read_bytes(), "application/octet-stream")) for n in names]
    multipart = requests.post(base + "/api/v1/predict", files=form, timeout=60)
    np.testing.assert_allclose(probabilities(multipart), expected, rtol=1e-5, atol=1e-6)
    raw = requests.post(
        base + "/api/v1/predict", data=(folder / "p1.jpg").read_bytes(), headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )  # fmt: skip
    np.testing.assert_allclose(probabilities(raw), expected[1:2], rtol=1e-5, atol=1e-6)
    # bad files are row errors, the others predicted
    mixed = [b64[0], {"b64": "%%%"}, {"b64": base64.b64encode(b"not an image").decode()}]
    answer = requests.post(base + "/api/v1/predict", json={"instances": mixed}, timeout=60)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["predictions"]
    assert rows[0]["prediction"] is not None and not rows[0].get("error")
    assert "not valid base64" in rows[1]["error"] and "not an image" in rows[2]["error"]


def test_api_refuses_bombs_and_what_it_cannot_take_with_clear_messages(files, image_server):
    base = image_server.base
    big = encoded(np.zeros((1100, 1000, 3), np.uint8), "PNG")  # 1.1 Mpx: over IMAGE_MAX_PIXELS=1,000,000
    answer = requests.post(base + "/api/v1/predict", data=big, headers={"Content-Type": "image/png"}, timeout=60)
    assert answer.status_code == 200
    assert "over the 1,000,000 limit (IMAGE_MAX_PIXELS)" in answer.json()["predictions"][0]["error"]
    bomb = requests.post(base + "/api/v1/predict", data=bomb_png(), headers={"Content-Type": "image/png"}, timeout=60)
    assert "IMAGE_MAX_PIXELS" in bomb.json()["predictions"][0]["error"]
    explain = requests.post(
        base + "/api/v1/predict?explain=true", files=[("image", ("a.png", big, "image/png"))], timeout=60
    )
    assert explain.status_code == 400 and "not available for image models" in explain.json()["error"]["message"]
    unknown = requests.post(base + "/api/v1/predict", files=[("photo", ("a.png", big, "image/png"))], timeout=60)
    assert unknown.status_code == 400 and "not features; use image" in unknown.json()["error"]["message"]
    text = requests.post(base + "/api/v1/predict", data=b"x", headers={"Content-Type": "text/plain"}, timeout=60)
    assert text.status_code == 415 and "multipart/form-data" in text.json()["error"]["message"]
    for answer in (explain, unknown, text):
        assert "Traceback" not in answer.text


def test_history_keeps_the_file_name_size_and_digest_not_the_pixels(files, image_server):
    import hashlib

    data = (files["folder"] / "p0.png").read_bytes()
    form = [("image", ("holiday.png", data, "image/png"))]
    answer = requests.post(image_server.base + "/api/v1/predict", files=form, timeout=60)
    assert answer.status_code == 200, answer.text
    ident = answer.json()["prediction_id"]
    deadline = time.monotonic() + 30
    while True:  # the history writer records it in the background
        listing = requests.get(image_server.base + "/api/v1/history", params={"limit": 500}, timeout=30).json()
        found = [item for item in listing["items"] if item["id"] == ident]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found, listing
    kept = found[0]["inputs"][0]["image"]
    assert kept == {"file": "holiday.png", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert base64.b64encode(data).decode()[:40] not in json.dumps(listing)


DIGITS = REPO / "dashboard" / "demo" / "digits"


def test_page_predicts_an_image_shows_what_mattered_and_a_batch_with_thumbnails(env, downloads):
    """The image demo store through the page (AppTest): one upload -> the image, the answer, the occlusion map and
    its cost; several files and a zip in Batch -> results with thumbnails, a filter, the CSV download (file
    first); Compare runs the other version on the same images. Answers equal Keras's own on the same pixels."""
    import keras

    from tests.support.apptest import start

    env.setenv("MODEL_MANIFEST_URL", str(DIGITS / "manifest.json"))
    at = start()
    assert not at.exception
    inputs = at.sidebar.dataframe[0].value
    assert list(inputs["usual values"]) == ["image: 32×32 grayscale, pixels scaled to 0–1, padded"]
    seven = (DIGITS / "samples" / "digit-7.png").read_bytes()
    at.file_uploader(key="single-digit").upload("seven.png", seven, "image/png")
    at.button(key="single-submit").click().run()
    assert not at.exception
    assert at.metric[0].value == "7"
    assert len(at.get("imgs")) >= 1 or len(at.get("image")) >= 1
    cost = [c.value for c in at.caption if c.value.startswith("Why: each of 64 squares")]
    assert cost and "65 forward passes in one batched call" in cost[0]
    # batch: eight samples as files, two more in a zip, and a file that is not an image
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as packed:
        for digit in (8, 9):
            packed.write(DIGITS / "samples" / f"digit-{digit}.png", f"more/digit-{digit}.png")
    uploads = [(f"digit-{d}.png", (DIGITS / "samples" / f"digit-{d}.png").read_bytes(), "image/png") for d in range(8)]
    uploads += [("more.zip", buffer.getvalue(), "application/zip"), ("notes.png", b"hello", "image/png")]
    at.file_uploader(key="batch-images").set_value(uploads).run()
    assert not at.exception
    assert [m.value for m in at.metric][-2:] == ["10", "1"]
    table = at.main.dataframe[0].value
    assert list(table.columns[:2]) == ["image", "file"]
    assert table["image"].iloc[0].startswith("data:image/jpeg;base64,")
    downloaded = pd.read_csv(io.BytesIO(downloads(at.get("download_button")[0])), keep_default_na=False)
    assert list(downloaded.columns[:2]) == ["file", "prediction"]
    assert list(downloaded["file"][-3:]) == ["more/digit-8.png", "more/digit-9.png", "notes.png"]
    model = keras.models.load_model(DIGITS / "digits-1.1.0.keras")
    names = [f"digit-{d}.png" for d in range(8)] + ["digit-8.png", "digit-9.png"]
    pixels = np.stack([_padded((DIGITS / "samples" / n).read_bytes()) for n in names])
    expected = model.predict(pixels, verbose=0)
    got = downloaded[[f"probability_{d}" for d in range(10)]].iloc[:10].to_numpy(float)
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert (downloaded["prediction"][:10].astype(str) == [str(d) for d in range(10)]).mean() >= 0.8
    at.multiselect(key="batch-image-classes").set_value(["7"]).run()
    assert set(at.main.dataframe[0].value["prediction"].astype(str)) <= {"7"}
    at.selectbox(key="compare-version").select("1.0.0")
    at.button(key="compare-run").click().run()
    assert not at.exception
    assert [m for m in at.metric if m.label == "Agreement"]


def _padded(data: bytes) -> np.ndarray:
    """The digits schema's preprocessing done here with Pillow: grayscale, padded to 32x32, scaled to 0..1."""
    from PIL import ImageOps

    image = Image.open(io.BytesIO(data)).convert("L")
    return np.asarray(ImageOps.pad(image, (32, 32), Image.Resampling.BILINEAR, color=0), np.float32)[:, :, None] / 255


def test_drift_of_images_against_a_reference_folder(cnns, tmp_path):
    """publish --reference FOLDER stores the training images' statistics (size, aspect, brightness, contrast);
    predict --drift on a folder reads stable for images like them and major for much brighter ones."""
    reference, alike, bright = (tmp_path / name for name in ("reference", "alike", "bright"))
    for folder in (reference, alike, bright):
        folder.mkdir()
    for i in range(300):
        encoded_png = encoded(picture(1000 + i) // 2, "PNG")  # darker pictures, 30x20
        (reference if i < 240 else alike).joinpath(f"{i}.png").write_bytes(encoded_png)
    for i in range(60):
        (bright / f"{i}.png").write_bytes(encoded(128 + picture(2000 + i) // 2, "PNG"))
    store = tmp_path / "store"
    environ = {"MODEL_CACHE_DIR": str(tmp_path / "cache"), "HISTORY": "off"}
    command = ["publish", str(cnns["folder"] / "rgb.keras"), "--version", "1.0.0", "--store", str(store)]
    done = run_cli(*command, "--reference", str(reference), env=environ)
    assert done.returncode == 0, done.stderr
    entry = json.loads((store / "manifest.json").read_text())["versions"][0]
    assert set(entry["reference"]["features"]) == {f"image.{s}" for s in ("width", "height", "aspect", "brightness",
                                                                           "contrast")}  # fmt: skip
    environ["MODEL_MANIFEST_URL"] = str(store / "manifest.json")
    verdicts = {}
    for folder in (alike, bright):
        done = run_cli("predict", "--input", str(folder), "--output", str(tmp_path / "o.csv"), "--drift", env=environ)
        assert done.returncode == 0, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("drift: image.brightness")]
        assert len(lines) == 1, done.stderr
        verdicts[folder.name] = lines[0].split(": ")[2].split(" ")[0]
    assert verdicts == {"alike": "stable", "bright": "major"}


def test_a_wrong_answer_on_an_image_exports_as_a_folder_per_label(env, downloads):
    """HISTORY_IMAGES=thumbnails: the form's image is recorded with its name, size, digest and a small PNG; a
    report of the right answer exports as a zip with one folder per label and labels.csv."""
    import hashlib

    from tests.support.apptest import start

    env.setenv("MODEL_MANIFEST_URL", str(DIGITS / "manifest.json"))
    env.setenv("HISTORY_IMAGES", "thumbnails")
    at = start()
    seven = (DIGITS / "samples" / "digit-7.png").read_bytes()
    at.file_uploader(key="single-digit").upload("seven.png", seven, "image/png")
    at.button(key="single-submit").click().run()
    assert at.metric[0].value == "7"
    at.selectbox(key="feedback-label").select("1")
    at.button(key="feedback-submit").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Thanks: reported as 1. It is listed in the Feedback tab."]
    at.session_state["tab"] = "Feedback"
    at.run()
    assert not at.exception
    archive = zipfile.ZipFile(io.BytesIO(downloads(at.get("download_button")[-1])))
    names = sorted(archive.namelist())
    assert names == ["1/00000-seven.png", "labels.csv"]
    kept = np.asarray(Image.open(io.BytesIO(archive.read("1/00000-seven.png"))).convert("L"))
    np.testing.assert_array_equal(kept, np.asarray(Image.open(DIGITS / "samples" / "digit-7.png")))
    labels = pd.read_csv(io.BytesIO(archive.read("labels.csv")), dtype=str)
    assert labels.to_dict(orient="records") == [{"digit": "1/00000-seven.png", "label": "1"}]
    csv = pd.read_csv(io.BytesIO(downloads(at.get("download_button")[-2])), dtype=str)
    assert csv.to_dict(orient="records") == [{"digit": "seven.png", "label": "1"}]
    from dashboard import history, service

    items = history.recorder(service.settings()).predictions(history.Filters(), details=True).items
    kept = items[0]["inputs"][0]["digit"]
    assert (kept["file"], kept["bytes"], kept["sha256"]) == ("seven.png", len(seven), hashlib.sha256(seven).hexdigest())
    assert kept["thumbnail"].startswith("data:image/png;base64,")


def test_openapi_documents_image_bodies(image_server):
    document = requests.get(image_server.base + "/api/v1/openapi.json", timeout=30).json()
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv", "multipart/form-data", "image/png", "image/jpeg", "image/webp"} <= set(body)


def test_a_grayscale_and_a_mixed_image_and_number_model_answer_as_keras(cnns, files, tmp_path):
    """The (H, W) grayscale model on a folder, and the image + number model on a CSV naming its images (CLI) and
    as a multipart form (the service seam the API uses): both equal Keras's own answers on the same pixels."""
    from dashboard import service
    from dashboard.config import load_settings
    from dashboard.prediction.images import ImageFile
    from dashboard.service.publish import publish

    settings = load_settings({"MODEL_CACHE_DIR": str(tmp_path / "cache")}, secrets={})
    publish(cnns["folder"] / "gray.keras", "1.0.0", str(tmp_path / "gray"), settings=settings)
    publish(cnns["folder"] / "mixed.keras", "1.0.0", str(tmp_path / "mixed"), settings=settings)
    env = {"MODEL_CACHE_DIR": str(tmp_path / "c"), "HISTORY": "off"}
    out = tmp_path / "gray.csv"
    gray_env = env | {"MODEL_MANIFEST_URL": str(tmp_path / "gray" / "manifest.json")}
    done = run_cli("predict", "--input", str(files["folder"]), "--output", str(out), env=gray_env)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out, keep_default_na=False)
    good = table[table["error"] == ""]
    assert list(good["file"]) == GOOD
    pixels = np.stack([keras_pixels((files["folder"] / n).read_bytes(), (12, 12), "L")[:, :, 0] for n in GOOD])
    np.testing.assert_allclose(good["probability"].to_numpy(float), cnns["gray"].predict(pixels, verbose=0)[:, 0],
                               atol=2e-6)  # fmt: skip

    shutil.copytree(files["folder"], tmp_path / "pics")
    listing = tmp_path / "people.csv"
    listing.write_text("photo,age\npics/p0.png,30\npics/p4.bmp,71\npics/notes.txt,40\npics/p2.webp,abc\n")
    out = tmp_path / "mixed.csv"
    mixed_env = env | {"MODEL_MANIFEST_URL": str(tmp_path / "mixed" / "manifest.json")}
    done = run_cli("predict", "--input", str(listing), "--output", str(out), env=mixed_env)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns[:2]) == ["photo", "age"]
    assert list(table["error"] != "") == [False, False, True, True]
    assert "age: 'abc' is not a number" in table["error"][3]
    photos = np.stack([keras_pixels((files["folder"] / n).read_bytes(), (8, 8), "L") for n in ("p0.png", "p4.bmp")])
    expected = cnns["mixed"].predict({"photo": photos, "age": np.array([[30.0], [71.0]])}, verbose=0)
    got = table.loc[[0, 1], ["probability_0", "probability_1"]].to_numpy(float)
    np.testing.assert_allclose(got, expected, atol=2e-6)

    served_settings = service.settings(mixed_env | {"MODEL_CACHE_DIR": str(tmp_path / "c")})
    served = service.load_version(served_settings, service.catalog(served_settings).default)
    rows = [{"photo": ImageFile("p0.png", (files["folder"] / "p0.png").read_bytes()), "age": 30},
            {"photo": ImageFile("p4.bmp", (files["folder"] / "p4.bmp").read_bytes()), "age": 71}]  # fmt: skip
    np.testing.assert_allclose(service.predict_rows(served, rows).values, expected, rtol=1e-5, atol=1e-6)


def test_the_images_of_one_request_count_against_api_max_bytes(image_server):
    """Twenty 900x1000 PNGs are a few KB on the wire but 54 MB of pixels: refused before any is decoded."""
    flat = encoded(np.zeros((1000, 900, 3), np.uint8), "PNG")
    form = [("image", (f"{i}.png", flat, "image/png")) for i in range(20)]
    answer = requests.post(image_server.base + "/api/v1/predict", files=form, timeout=60)
    assert answer.status_code == 413, answer.text
    assert "decode to 54,000,000 bytes of pixels, over the 52,428,800 limit (API_MAX_BYTES)" in answer.text
    small = requests.post(image_server.base + "/api/v1/predict", files=form[:2], timeout=60)
    assert small.status_code == 200 and len(small.json()["predictions"]) == 2


def test_the_image_examples_in_docs_api_md_run_on_the_digits_demo(tmp_path):
    """docs/api.md's image curl commands, run as written against the digits demo (the README's one variable)."""
    text = (REPO / "docs" / "api.md").read_text()
    block = text.split("<!-- image-api-examples -->", 1)[1].split("<!-- /image-api-examples -->", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("curl ")]
    assert len(commands) == 3
    running = dashboard_server.start(tmp_path, {"MODEL_MANIFEST_URL": "dashboard/demo/digits/manifest.json"})
    try:
        running.wait_ready()
        host = running.base.removeprefix("http://")
        answers = []
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", command.replace("localhost:8501", host)], cwd=REPO, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            answers.append(json.loads(done.stdout))
    finally:
        running.stop()
    assert [p["prediction"] for p in answers[0]["predictions"]] == ["7", "3"]
    assert [p["prediction"] for p in answers[1]["predictions"]] == ["7"]
    assert int(np.argmax(answers[2]["predictions"][0])) == 3


def test_batches_of_images_stay_within_the_pixel_budget(files, image_store, tmp_path, monkeypatch, capsys):
    """images.BATCH_BYTES bounds the model input held at once: the CLI predicts in chunks that fit it (the same
    answers as one pass), the API refuses a request with more images than fit (413), and the page's Batch says to
    use the command line."""
    from dashboard import service
    from dashboard.api.errors import ApiError
    from dashboard.api.uploads import check_pixels
    from dashboard.cli.main import main
    from dashboard.prediction import images
    from dashboard.prediction.images import ImageFile

    for name in list(os.environ):
        if name.startswith(("MODEL_", "HISTORY")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODEL_MANIFEST_URL", str(image_store / "rgb" / "manifest.json"))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HISTORY", "off")
    assert main(["predict", "--input", str(files["folder"]), "--output", str(tmp_path / "whole.csv")]) == 0
    monkeypatch.setattr(images, "BATCH_BYTES", 3 * 16 * 16 * 3 * 4)  # three 16x16 RGB images at a time
    assert images.batch_rows([_rgb_feature()]) == 3
    assert main(["predict", "--input", str(files["folder"]), "--output", str(tmp_path / "chunked.csv")]) == 0
    capsys.readouterr()
    whole, chunked = (pd.read_csv(tmp_path / n, keep_default_na=False) for n in ("whole.csv", "chunked.csv"))
    pd.testing.assert_frame_equal(whole, chunked)
    settings = service.settings()
    served = service.load_version(settings, service.catalog(settings).default)
    rows = [{"image": ImageFile(f"{i}.png", encoded(picture(i), "PNG"))} for i in range(4)]
    with pytest.raises(ApiError, match="4 images are more than one request may hold at this model's size"):
        check_pixels(rows, served, settings.api_max_bytes)
    check_pixels(rows[:3], served, settings.api_max_bytes)


def _rgb_feature():
    from dashboard.prediction.schema import Feature

    return Feature(name="image", type="image", height=16, width=16, channels=3)


def test_the_page_batch_sends_more_images_than_fit_to_the_command_line(env, monkeypatch):
    from dashboard.prediction import images
    from tests.support.apptest import start

    env.setenv("MODEL_MANIFEST_URL", str(DIGITS / "manifest.json"))
    monkeypatch.setattr(images, "BATCH_BYTES", 5 * 32 * 32 * 4)  # five 32x32 grayscale images
    at = start()
    uploads = [(f"digit-{d}.png", (DIGITS / "samples" / f"digit-{d}.png").read_bytes(), "image/png") for d in range(8)]
    at.file_uploader(key="batch-images").set_value(uploads).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "8 images are more than the page predicts at once (5 at this model's size); predict them with the command "
        "line (python -m dashboard predict --input FOLDER), which takes any number a chunk at a time, or upload fewer"
    ]
    at.file_uploader(key="batch-images").set_value(uploads[:5]).run()
    assert not at.error and [m.value for m in at.metric][-2:] == ["5", "0"]
