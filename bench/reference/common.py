"""What both reference servers share with fashion-serve: the ONNX session, preprocessing, answer.

The references differ from fashion-serve only in their HTTP stack, so the benchmark compares
frameworks, not models: same model file, same service.preprocess, same session options.
"""

import os
from pathlib import Path

from service.labels import CLASS_NAMES
from service.preprocess import preprocess_images
from service.runtime import CPU, OnnxModel

MODEL = OnnxModel(Path(os.environ["BENCH_MODEL"]).read_bytes(), [CPU])
MODEL.warm_up()
MODEL_INFO = {
    "name": os.environ.get("BENCH_MODEL_NAME", "fashion-mnist"),
    "version": int(os.environ.get("BENCH_MODEL_VERSION", "1")),
    "alias": "production",
}


def classify(blobs: list[bytes]) -> dict:
    """The fashion-serve response body for a batch of encoded images."""
    probabilities = MODEL.run(preprocess_images(blobs))
    best = probabilities.argmax(axis=1).tolist()
    return {
        "model": MODEL_INFO,
        "predictions": [
            {
                "label": CLASS_NAMES[top],
                "class_id": top,
                "confidence": row[top],
                "probabilities": dict(zip(CLASS_NAMES, row, strict=True)),
            }
            for top, row in zip(best, probabilities.tolist(), strict=True)
        ],
    }
