"""The naive baseline: a minimal Flask app run by gunicorn's default sync worker.

Run: BENCH_MODEL=model.onnx gunicorn -w 1 bench.reference.naive_flask:app
"""

from flask import Flask, jsonify, request

from bench.reference.common import classify

app = Flask(__name__)


@app.post("/predict")
def predict():
    """Multipart field 'image' (repeatable) or a raw image body, as fashion-serve accepts."""
    if request.mimetype == "multipart/form-data":
        blobs = [upload.read() for upload in request.files.getlist("image")]
    else:
        blobs = [request.get_data()]
    return jsonify(classify(blobs))


@app.get("/readyz")
def readyz():
    """Ready as soon as it answers: the model loads at import."""
    return {"ready": True}
