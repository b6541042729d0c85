"""What every stack serves and is sent: the model, the test image, the request shapes."""

import io
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from service.preprocess import preprocess_images
from service.registry import Registry
from service.runtime import CPU, OnnxModel

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "fashion-mnist"
ALIAS = "production"
BATCH = 256
BOUNDARY = "fashionbenchboundary"
SERVER_CPU, CLIENT_CPU = "0", "1"


@dataclass(frozen=True)
class Shape:
    """One request shape the load generator sends to /predict."""

    name: str
    body: bytes
    content_type: str
    images: int


def servable_model(model_dir: Path, work: Path) -> tuple[Path, int, Path]:
    """The registry to serve: the shipped one if its production alias resolves, else a stand-in."""
    try:
        # A copy: a served registry gains a journal of answers (.live/), and tests that copy the
        # shipped registry would count a benchmark's answers as their own.
        served = work / "shipped-models"
        shutil.copytree(model_dir, served, ignore=shutil.ignore_patterns(".live"))
        registry = Registry(served)
        version = registry.resolve(MODEL_NAME, alias=ALIAS)
        registry.verify_version(MODEL_NAME, version)
        return served, version, registry.model_path(MODEL_NAME, version)
    except Exception as error:  # missing, not yet trained, or refused: all mean "build one"
        print(f"# {model_dir} not servable ({error}); using a stand-in MLP", file=sys.stderr)
    root = work / "models"
    root.mkdir()
    registry = Registry(root)
    onnx_file = work / "stand-in.onnx"
    onnx_file.write_bytes(stand_in_mlp())
    version = registry.register(MODEL_NAME, onnx_file, {"architecture": {"name": "stand-in"}})
    registry.set_alias(MODEL_NAME, ALIAS, version)
    return root, version, registry.model_path(MODEL_NAME, version)


def stand_in_mlp() -> bytes:
    """The shipped architecture (Flatten → Dense 128 ReLU → Dense 10 → softmax), seeded weights."""
    from onnx import TensorProto, helper, numpy_helper  # training-side tool: only needed here

    rng = np.random.default_rng(42)
    tensors = {
        "flat_shape": np.array([-1, 784], dtype=np.int64),
        "w1": rng.normal(0, 0.05, (784, 128)).astype(np.float32),
        "b1": np.zeros(128, dtype=np.float32),
        "w2": rng.normal(0, 0.2, (128, 10)).astype(np.float32),
        "b2": np.zeros(10, dtype=np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w1", "b1"], ["hidden_pre"]),
            helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
            helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "stand-in-mlp-128",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(value, name) for name, value in tensors.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_image() -> bytes:
    """A 28×28 grey PNG of a light boot-like shape on black, as a client would upload it."""
    image = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(image)
    draw.polygon([(6, 4), (14, 4), (15, 16), (24, 19), (24, 24), (5, 24)], fill=200)
    draw.line([(6, 12), (14, 12)], fill=120, width=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def expected_answer(model: bytes, png: bytes) -> list[float]:
    """onnxruntime in-process on the same bytes: what every stack must answer, exactly."""
    session = OnnxModel(model, [CPU])
    return session.run(preprocess_images([png]))[0].tolist()


def shapes(png: bytes) -> list[Shape]:
    """Multipart with one image, the same image as a raw body, and a 256-image multipart batch."""
    return [
        Shape("multipart", multipart([png]), f"multipart/form-data; boundary={BOUNDARY}", 1),
        Shape("raw body", png, "image/png", 1),
        Shape(
            f"batch {BATCH}",
            multipart([png] * BATCH),
            f"multipart/form-data; boundary={BOUNDARY}",
            BATCH,
        ),
    ]


def multipart(blobs: list[bytes]) -> bytes:
    """A multipart/form-data body with each blob as a file in the field 'image'."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
        f'filename="{index}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + blob
        + b"\r\n"
        for index, blob in enumerate(blobs)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
