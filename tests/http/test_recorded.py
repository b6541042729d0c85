"""Replay a fixed set of requests over every endpoint and compare with the recorded answers.

recorded.txt pins the answers byte for byte (request IDs, timings, pids and clocks masked), so
a refactoring cannot change them unnoticed, with one allowance: a float may differ in its last
digits, since onnxruntime's kernels round differently on CPUs with and without AVX-512. After a
wanted change, rewrite it with `RECORD=1 pytest tests/http/test_recorded.py` and name the
changed answers in the commit.
"""

import base64
import gzip
import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from service.activations import DECIMALS
from service.http import create_app
from service.settings import Settings
from tests.images import png
from tests.shipped import copy_shipped

RECORDING = Path(__file__).with_name("recorded.txt")
TEST_IMAGES = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
MODEL = "fashion-mnist"
TOKEN = "recorded-token"
MISSING = 99  # a version number the shipped registry is far from reaching
SHOWN_HEADERS = (
    "Content-Type",
    "X-Model-Version",
    "X-Preprocess-Mode",
    "Inference-Header-Content-Length",
    "Allow",
    "WWW-Authenticate",
    "Retry-After",
    "Cache-Control",
)
# Values that change from run to run, whatever the code: masked before comparing.
MASKS = (
    (re.compile(rb'"(pid|load_seconds|at|created_at|ts)": ?[^,}\]]+'), rb'"\1": "*"'),
    (re.compile(rb"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), rb"<time>"),
)
# Metric samples whose values are clocks or durations; counters of requests and images stay.
TIMED_SAMPLE = re.compile(r"^(\w*(?:seconds|created)\w*(?:\{[^}]*\})?) \S+$")
# A float in an answer. The same model on two CPUs agrees to about 1e-6 relative (measured 2e-6
# on probabilities near 1e-9); the activations view's values, rounded to DECIMALS, may round the
# other way. More than that is a change to what is computed.
FLOAT = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")
RELATIVE_TOLERANCE = 1e-5


def fashion_images() -> np.ndarray:
    """The first ten Fashion-MNIST test images, uint8 [10,28,28]."""
    data = gzip.decompress(TEST_IMAGES.read_bytes())
    return np.frombuffer(data, np.uint8, offset=16)[: 10 * 784].reshape(10, 28, 28)


def multipart(*files: bytes, field: str = "image") -> tuple[bytes, str]:
    boundary = "recorded-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="x.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for data in files
    ]
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def requests() -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(method, path, body, headers): every endpoint and protocol, good and bad."""
    pixels = fashion_images()
    pngs = [png(image) for image in pixels]
    one, one_type = multipart(pngs[0])
    three, three_type = multipart(*pngs[1:4])
    five, five_type = multipart(*pngs[:5])
    other, other_type = multipart(pngs[0], field="picture")
    big = np.zeros((200, 150, 3), np.uint8)
    big[40:160, 30:120] = (200, 30, 30)  # a red object on black: a photo, resized to 28×28
    photo = png(big)
    floats = (pixels[:2].astype(np.float32) / 255).tolist()
    v2_json = {
        "id": "req-1",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 28, 28], "data": floats}],
    }
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "UINT8",
                    "shape": [3, 28, 28],
                    "parameters": {"binary_data_size": 3 * 784},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    binary = header + pixels[:3].tobytes()
    classify = {
        **v2_json,
        "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
    }
    b64 = base64.b64encode(pngs[4]).decode()
    image = {"Content-Type": "image/png"}
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    infer = f"/v2/models/{MODEL}/infer"
    return [
        ("GET", "/healthz", b"", {}),
        ("GET", "/readyz", b"", {}),
        ("GET", "/", b"", {}),
        ("GET", "/docs", b"", {}),
        ("GET", "/openapi.json", b"", {}),
        ("GET", "/nowhere", b"", {}),
        ("DELETE", "/predict", b"", {}),
        # JSON predict: multipart, batch, raw body, options, the named-model route.
        ("POST", "/predict", one, {"Content-Type": one_type}),
        ("POST", "/predict", three, {"Content-Type": three_type}),
        ("POST", "/predict", pngs[5], image),
        ("POST", "/predict", pngs[6], {"Content-Type": "application/octet-stream"}),
        (
            "POST",
            "/predict",
            gzip.compress(pngs[7], mtime=0),
            {**image, "Content-Encoding": "gzip"},
        ),
        ("POST", "/predict?version=1", pngs[8], image),
        ("POST", "/predict?alias=production&invert=false&mode=dataset", pngs[8], image),
        ("POST", "/predict?invert=true", pngs[9], image),
        ("POST", "/predict?mode=photo", photo, image),
        ("POST", "/predict", photo, image),
        ("POST", f"/models/{MODEL}/predict?version=2", one, {"Content-Type": one_type}),
        # Every error class of an image request.
        ("POST", "/predict", b"", {}),
        ("POST", "/predict", b"", image),
        ("POST", "/predict", b"hello", {"Content-Type": "text/plain"}),
        ("POST", "/predict", one, {"Content-Type": "multipart/form-data"}),
        ("POST", "/predict", other, {"Content-Type": other_type}),
        ("POST", "/predict", b"--x\r\nbroken", {"Content-Type": "multipart/form-data; boundary=x"}),
        ("POST", "/predict", five, {"Content-Type": five_type}),
        ("POST", "/predict", b"\x89PNG not really", image),
        ("POST", "/predict", b"<svg xmlns='http://www.w3.org/2000/svg'/>", image),
        ("POST", "/predict", png(np.zeros((300, 300), np.uint8)), image),
        ("POST", "/predict", png(np.full((64, 64), 255, np.uint8)), image),
        ("POST", "/predict", b"x" * 70_000, image),
        ("POST", "/predict", pngs[0], {**image, "Content-Encoding": "br"}),
        ("POST", "/predict?version=x", pngs[0], image),
        ("POST", f"/predict?version={MISSING}", pngs[0], image),
        ("POST", "/predict?version=1&alias=production", pngs[0], image),
        ("POST", "/predict?alias=canary", pngs[0], image),
        ("POST", "/predict?alias=BAD!", pngs[0], image),
        ("POST", "/predict?invert=maybe", pngs[0], image),
        ("POST", "/predict?mode=sketch", pngs[0], image),
        ("POST", "/models/nope/predict", pngs[0], image),
        ("POST", "/models/BAD/predict", pngs[0], image),
        # /preprocess and the activations.
        ("POST", "/preprocess", pngs[0], image),
        ("POST", "/preprocess?format=json", pngs[0], image),
        ("POST", "/preprocess", pngs[0], {**image, "Accept": "application/json"}),
        ("POST", "/preprocess", three, {"Content-Type": three_type}),
        ("POST", "/preprocess?format=png", three, {"Content-Type": three_type}),
        ("POST", "/preprocess?format=gif", pngs[0], image),
        ("POST", "/preprocess?mode=photo", photo, image),
        ("POST", f"/models/{MODEL}/activations", pngs[0], image),
        ("POST", f"/models/{MODEL}/activations?version=1", pngs[1], image),
        ("POST", f"/models/{MODEL}/activations", three, {"Content-Type": three_type}),
        # The registry's views.
        ("GET", "/models", b"", {}),
        ("GET", f"/models/{MODEL}", b"", {}),
        ("GET", f"/models/{MODEL}/versions/1", b"", {}),
        ("GET", f"/models/{MODEL}/versions/2", b"", {}),
        ("GET", f"/models/{MODEL}/versions/{MISSING}", b"", {}),
        ("GET", f"/models/{MODEL}/versions/0", b"", {}),
        ("GET", "/models/nope", b"", {}),
        ("GET", f"/models/{MODEL}/versions/1/files/training.png", b"", {}),
        ("GET", f"/models/{MODEL}/versions/2/files/confusion.png", b"", {}),
        ("GET", f"/models/{MODEL}/versions/1/files/model.onnx", b"", {}),
        # Aliases: without and with the token, bad bodies, promote and roll back.
        ("PUT", f"/models/{MODEL}/aliases/staging", b'{"version": 1}', {}),
        (
            "PUT",
            f"/models/{MODEL}/aliases/staging",
            b'{"version": 1}',
            {"Authorization": "Bearer no"},
        ),
        ("PUT", f"/models/{MODEL}/aliases/staging", b"not json", auth),
        ("PUT", f"/models/{MODEL}/aliases/staging", b'{"version": 0}', auth),
        ("PUT", f"/models/{MODEL}/aliases/staging", b'{"version": %d}' % MISSING, auth),
        ("PUT", f"/models/{MODEL}/aliases/staging", b'{"version": 1}', auth),
        ("POST", "/predict?alias=staging", pngs[0], image),
        ("PUT", f"/models/{MODEL}/aliases/staging", b'{"version": 2.0}', auth),
        ("DELETE", f"/models/{MODEL}/aliases/staging", b"", {}),
        ("DELETE", f"/models/{MODEL}/aliases/staging", b"", auth),
        ("DELETE", f"/models/{MODEL}/aliases/staging", b"", auth),
        ("DELETE", f"/models/{MODEL}/aliases/nothing", b"", auth),
        ("GET", f"/models/{MODEL}", b"", {}),
        ("GET", "/readyz", b"", {}),
        # KServe v2.
        ("GET", "/v2", b"", {}),
        ("GET", "/v2/health/live", b"", {}),
        ("GET", "/v2/health/ready", b"", {}),
        ("GET", f"/v2/models/{MODEL}", b"", {}),
        ("GET", f"/v2/models/{MODEL}/versions/1", b"", {}),
        ("GET", f"/v2/models/{MODEL}/ready", b"", {}),
        ("GET", f"/v2/models/{MODEL}/versions/2/ready", b"", {}),
        ("GET", "/v2/models/nope", b"", {}),
        ("POST", infer, json.dumps(v2_json).encode(), {"Content-Type": "application/json"}),
        ("POST", f"/v2/models/{MODEL}/versions/1/infer", json.dumps(v2_json).encode(), {}),
        ("POST", infer, binary, {"Inference-Header-Content-Length": str(len(header))}),
        (
            "POST",
            infer,
            gzip.compress(json.dumps(classify).encode(), mtime=0),
            {"Content-Encoding": "gzip"},
        ),
        ("POST", infer, b"not json", {}),
        ("POST", infer, b'{"inputs": []}', {}),
        ("POST", infer, binary, {"Inference-Header-Content-Length": "9999999"}),
        ("POST", "/v2/models/nope/infer", json.dumps(v2_json).encode(), {}),
        # TF Serving.
        ("GET", f"/v1/models/{MODEL}", b"", {}),
        ("GET", f"/v1/models/{MODEL}/versions/2", b"", {}),
        ("GET", f"/v1/models/{MODEL}/labels/production", b"", {}),
        ("GET", "/v1/models/nope", b"", {}),
        ("POST", f"/v1/models/{MODEL}:predict", json.dumps({"instances": floats}).encode(), {}),
        (
            "POST",
            f"/v1/models/{MODEL}/versions/1:predict",
            json.dumps({"inputs": {"image": floats}}).encode(),
            {},
        ),
        (
            "POST",
            f"/v1/models/{MODEL}/labels/production:predict",
            json.dumps({"instances": [{"b64": b64}]}).encode(),
            {},
        ),
        ("POST", f"/v1/models/{MODEL}:predict", b'{"instances": "x"}', {}),
        ("POST", f"/v1/models/{MODEL}:predict", b"[", {}),
        ("POST", f"/v1/models/{MODEL}/labels/canary:predict", b'{"instances": []}', {}),
        # Metrics last: their counters have seen everything above.
        ("GET", "/metrics", b"", {}),
    ]


def masked(data: bytes) -> bytes:
    for pattern, replacement in MASKS:
        data = pattern.sub(replacement, data)
    return data


def answer(method: str, path: str, body: bytes, headers: dict[str, str], response, log: str) -> str:
    data = response.get_data()
    mimetype = response.mimetype or ""
    if path == "/metrics":
        # Counters depend on timings (histogram buckets): keep the shape, the names and labels.
        lines = (TIMED_SAMPLE.sub(r"\1 <n>", line) for line in data.decode().splitlines())
        text = "\n".join(sorted(set(lines)))
    elif mimetype.startswith(("application/json", "text/")) and "Inference-Header" not in str(
        response.headers
    ):
        text = masked(data).decode()
        if mimetype == "text/html":
            text = f"<html sha256={hashlib.sha256(data).hexdigest()} bytes={len(data)}>"
    else:
        length = response.headers.get("Inference-Header-Content-Length")
        head = masked(data[: int(length)]).decode() if length else ""
        if '"FP32"' in head:  # the probabilities, as numbers: their bits depend on the CPU
            text = f"{head}<FP32 {np.frombuffer(data[int(length) :], '<f4').tolist()}>"
        else:
            text = f"{head}<binary sha256={hashlib.sha256(data).hexdigest()} bytes={len(data)}>"
    shown_headers = "".join(
        f"  {name}: {shown_header(name, response.headers[name])}\n"
        for name in SHOWN_HEADERS
        if name in response.headers
    )
    digest = hashlib.sha256(body).hexdigest()[:12]
    return (
        f"### {method} {path} body={len(body)}:{digest} {sorted(headers)}\n"
        f"{response.status}\n{shown_headers}{access_line(log)}{text.rstrip()}\n"
    )


def shown_header(name: str, value: str) -> str:
    # Werkzeug lists allowed methods from a set, in an order that changes from run to run.
    return ", ".join(sorted(value.split(", "))) if name == "Allow" else value


def access_line(log: str) -> str:
    """What the access log says of the request, but its ID, time and duration."""
    for line in log.splitlines():
        if line.startswith('{"ts"'):
            entry = json.loads(line)
            return (
                "  log: "
                + " ".join(
                    f"{key}={entry[key]}" for key in ("method", "path", "status", "model", "remote")
                )
                + "\n"
            )
    return "  log: none\n"


@pytest.fixture
def recorded_app(tmp_path: Path):
    models = tmp_path / "models"
    copy_shipped(models)
    # Aliases as the recording expects them, whatever the shipped registry says today.
    (models / MODEL / "aliases.json").write_text('{"production": 2, "staging": 2}\n')
    (models / MODEL / "alias_history.json").write_text('{"production": [1]}\n')
    settings = Settings(
        model_dir=models,
        admin_token=TOKEN,
        max_batch=4,
        max_upload_bytes=60_000,
        max_pixels=200 * 200,
        reload_interval=3600,
    )
    app = create_app(settings)
    yield app
    app.extensions["fashion_serve"].close()


def test_every_request_answers_as_recorded(recorded_app, capfd):
    client = recorded_app.test_client()
    answers = []
    for method, path, body, headers in requests():
        capfd.readouterr()
        response = client.open(path, method=method, data=body, headers=headers)
        answers.append(answer(method, path, body, headers, response, capfd.readouterr().err))
    got = "\n".join(answers)
    if os.environ.get("RECORD"):
        RECORDING.write_text(got)
    expected = RECORDING.read_text()
    assert len(answers) >= 50
    # Compared answer by answer: a failure names the first request that changed.
    for want, have in zip(expected.split("\n### "), got.split("\n### "), strict=True):
        assert same_answer(have, want), (have, want)


def same_answer(have: str, want: str) -> bool:
    """Equal text, where each float may differ from the recorded one by a CPU's rounding."""
    if FLOAT.sub("<float>", have) != FLOAT.sub("<float>", want):
        return False
    rounded = 1.01 * 10.0**-DECIMALS if "/activations " in want.split("\n", 1)[0] else 0.0
    pairs = zip(FLOAT.findall(have), FLOAT.findall(want), strict=True)
    return all(
        math.isclose(float(h), float(w), rel_tol=RELATIVE_TOLERANCE, abs_tol=rounded)
        for h, w in pairs
    )


RECORDED = '{"p":[0.4260684549808502,2.051201875019615e-9]}'
ACTIVATIONS = "POST /models/fashion-mnist/activations body=394:cc22f44180c3\n"


@pytest.mark.parametrize(
    ("have", "want", "same"),
    [
        ('{"p":[0.42606860399246216,2.051197878216726e-9]}', RECORDED, True),  # AVX2 and AVX-512
        ('{"p":[0.4261,2.051201875019615e-9]}', RECORDED, False),  # rounded
        ('{"p":[0.4260684549808502,2.05e-9]}', RECORDED, False),
        ('{"q":[0.4260684549808502,2.051201875019615e-9]}', RECORDED, False),
        ('{"p":[0.4260684549808502]}', RECORDED, False),
        (ACTIVATIONS + "[0.42080000042915344]", ACTIVATIONS + "[0.42089998722076416]", True),
        (ACTIVATIONS + "[0.42070001363754272]", ACTIVATIONS + "[0.42089998722076416]", False),
        ("[0.42080000042915344]", "[0.42089998722076416]", False),
    ],
)
def test_floats_may_differ_in_their_last_digits_only(have, want, same):
    assert same_answer(have, want) is same
