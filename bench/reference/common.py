"""What both reference servers share with fashion-serve: the ONNX session, preprocessing, answer.

The references differ from fashion-serve only in their HTTP stack, so the benchmark compares
frameworks, not models: same model file, same service.preprocess, same session options.
"""

import os
from pathlib import Path

from service.data_plane import Result
from service.loader import LoadedModel
from service.preprocess import preprocess_images
from service.runtime import CPU, OnnxModel

MODEL = OnnxModel(Path(os.environ["BENCH_MODEL"]).read_bytes(), [CPU])
MODEL.warm_up()
LOADED = LoadedModel(
    name=os.environ.get("BENCH_MODEL_NAME", "fashion-mnist"),
    version=int(os.environ.get("BENCH_MODEL_VERSION", "1")),
    card={},
    model=MODEL,
    load_seconds=0.0,
)
ALIAS = "production"


def classify(blobs: list[bytes]) -> dict:
    """The fashion-serve response body (service/http/predict.py) for a batch of encoded images."""
    result = Result(LOADED, ALIAS, MODEL.run(preprocess_images(blobs)))
    return {
        "model": {"name": LOADED.name, "version": LOADED.version, "alias": ALIAS},
        "predictions": result.predictions(),
    }
