"""A plain FastAPI app serving the benchmark model, run by uvicorn with uvloop and httptools.

Run: BENCH_MODEL=model.onnx uvicorn bench.reference.fastapi_app:app --loop uvloop --http httptools
"""

from fastapi import FastAPI, Request

from bench.reference.common import classify

app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> dict:
    """Multipart field 'image' (repeatable) or a raw image body, as fashion-serve accepts."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        blobs = [await upload.read() for upload in form.getlist("image")]
    else:
        blobs = [await request.body()]
    return classify(blobs)


@app.get("/readyz")
async def readyz() -> dict:
    """Ready as soon as it answers: the model loads at import."""
    return {"ready": True}
