"""(c) The HTTP floor: a bare FastAPI app under uvicorn calling the same inference function, with no validation."""

import json
import os

from fastapi import FastAPI, Request
from fastapi.responses import Response

from neuroflow.models.inference import Predictor

predictor = Predictor.from_directory(os.environ["NEUROFLOW_BENCH_MODEL_DIR"])
classes = predictor.schema.classes
app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> Response:
    records = json.loads(await request.body())["records"]
    body = {"predictions": predictor.predict_records(records).to_records(classes)}
    return Response(json.dumps(body), media_type="application/json")
