"""(e) BentoML's own floor: the smallest typed BentoML service calling the same inference function on a model folder
(no registry, no validation, no guard). What is left between it and (c) is BentoML's; between it and (a), neuroflow's.
"""

import os
from typing import Any

import bentoml

from neuroflow.models.inference import Predictor


@bentoml.service(name="bento-floor", workers=1, metrics={"enabled": True})
class BentoFloor:
    def __init__(self) -> None:
        self.predictor = Predictor.from_directory(os.environ["NEUROFLOW_BENCH_MODEL_DIR"])

    @bentoml.api
    async def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        prediction = self.predictor.predict_records(records)
        return {"predictions": prediction.to_records(self.predictor.schema.classes)}


@bentoml.service(name="bento-floor-batched", workers=1, metrics={"enabled": True})
class BentoFloorBatched:
    """(e2) The same with BentoML's adaptive batching: concurrent requests' records scored in one call."""

    def __init__(self) -> None:
        self.predictor = Predictor.from_directory(os.environ["NEUROFLOW_BENCH_MODEL_DIR"])

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=20)
    async def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prediction = self.predictor.predict_records(records)
        return prediction.to_records(self.predictor.schema.classes)
