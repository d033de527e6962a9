"""The BentoML service: serves the champion of the configured model, and follows it when it changes.

Run it with `neuroflow serve` (or `bentoml serve neuroflow.service.service:Neuroflow`). Settings come from
`NEUROFLOW_*` environment variables and, when `NEUROFLOW_CONFIG` names one, a YAML/TOML file; they are read once, here,
because BentoML takes its server configuration from the decorator below.
"""

import asyncio
import gc
import logging
import os
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import ServiceUnavailable
from starlette.responses import Response

from neuroflow.service.api import DirectPredict, OpenAPIDocument, typed_api
from neuroflow.service.app import (
    VERSION_HEADER,
    ModelHolder,
    ParsedBatch,
    answer,
    answer_body,
    create_app,
    not_ready,
)
from neuroflow.service.guard import RequestGuard
from neuroflow.service.loading import LoadedModel, load_directory, load_registered
from neuroflow.service.requests import dumps
from neuroflow.settings import Settings, load_settings
from neuroflow.store import ModelInfo, champion_version, mlflow_client

log = logging.getLogger("neuroflow.service")
BAKED_MODEL_ENV = "NEUROFLOW_BAKED_MODEL"  # a BentoML model tag, set by `neuroflow build` in the Bento
CONFIG_ENV = "NEUROFLOW_CONFIG"
# BentoML 1.4 keeps every request's OpenTelemetry span reachable (even with tracing off), so the heap grows by one span
# per request and each full garbage collection takes longer: the 100-400 ms latency spikes. Untraced paths make none.
UNTRACED_PATHS = ("/predict", "/metadata", "/readyz", "/livez", "/metrics")
# Per request, BentoML keeps a timeout timer and its future alive for `request_timeout_seconds`; with the default
# thresholds they keep triggering full collections. Fewer, larger young collections and rare full ones keep p99 flat.
GC_THRESHOLDS = (10_000, 10, 1_000)


class RegistrySource:
    """The champion alias in the MLflow registry."""

    follows = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.alias = settings.promotion.alias
        self.description = f"{self.name}@{self.alias} in {settings.tracking.tracking_uri}"
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = mlflow_client(self.settings.tracking, fail_fast=True)
        return self._client

    def current_version(self) -> str:
        return champion_version(self.client, self.name, self.alias)

    def load(self, version: str) -> LoadedModel:
        return load_registered(
            self.client,
            self.name,
            version,
            self.alias,
            self.settings.service,
            self.settings.tracking.trust_artifact_store,
        )


class BakedSource:
    """A model baked into the Bento by `neuroflow build`: served with no registry at all."""

    follows = False

    def __init__(self, tag: str, settings: Settings) -> None:
        self.tag = tag
        self.settings = settings
        self.description = f"BentoML model {tag} (baked in; the registry is not consulted)"

    def current_version(self) -> str:
        return ModelInfo.from_json(bentoml.models.get(self.tag).info.metadata).version

    def load(self, version: str) -> LoadedModel:
        model = bentoml.models.get(self.tag)
        info = ModelInfo.from_json(model.info.metadata)
        return load_directory(
            Path(model.path), info, self.settings.service, self.settings.tracking.trust_artifact_store
        )


def baked_model_tag(environment: dict[str, str]) -> str | None:
    """The model a Bento was built with (its `bento.yaml` sits above the package in a Bento), or the override."""
    if tag := environment.get(BAKED_MODEL_ENV):
        return tag
    bento_file = Path(__file__).resolve().parents[3] / "bento.yaml"  # <bento>/src/neuroflow/service/service.py
    if not bento_file.is_file():
        return None
    import yaml

    models = yaml.safe_load(bento_file.read_text()).get("models") or []
    return str(models[0]["tag"]) if models else None


def model_source(settings: Settings, environment: dict[str, str]) -> RegistrySource | BakedSource:
    """Where the served model comes from: the baked model of a Bento, else the registry's champion."""
    baked = baked_model_tag(environment)
    return BakedSource(baked, settings) if baked else RegistrySource(settings)


def freeze_heap(_: LoadedModel) -> None:
    """Move everything alive now (libraries, the model) out of the cyclic garbage collector's reach.

    The server holds about 400,000 long-lived objects (MLflow, pandas, sklearn, pydantic). Without this, every full
    collection walks them all and stalls requests for 100-300 ms: the latency spikes BentoML shows out of the box.
    """
    gc.freeze()


def build_service(
    settings: Settings, source: RegistrySource | BakedSource | Any, metrics: bool = True
) -> tuple[Any, ModelHolder]:
    """The BentoML service for `settings` and a model source: `/predict` and `/metadata` as typed `@bentoml.api`
    methods, the FastAPI routes beside them (GET /metadata, /reload, /docs), one request guard around everything.
    `metrics=False` leaves out the Prometheus metrics, which exist once per process (for tests that build several)."""
    app, holder = create_app(settings, source, after_swap=freeze_heap)
    PredictInput, PredictOutput, MetadataInput, MetadataOutput = typed_api(holder, settings.service)

    @bentoml.service(
        name="neuroflow",
        workers=settings.service.workers,
        traffic={"timeout": settings.service.request_timeout_seconds},
        logging={"access": {"enabled": settings.service.access_log}},
        tracing={"excluded_urls": [] if settings.service.trace_requests else list(UNTRACED_PATHS)},
        http={"host": settings.service.host, "port": settings.service.port},
        metrics={"enabled": metrics},
    )
    @bentoml.asgi_app(app, path="/")
    class Neuroflow:
        """Predictions from the champion model of the MLflow registry, checked against its training schema."""

        @bentoml.api(route="/predict", input_spec=PredictInput, output_spec=PredictOutput)
        async def predict(self, records: list[dict[str, Any]]) -> Any:
            """One prediction per record (raw feature values as in the training data), typed as the training
            target, with per-class probabilities and the model version that computed them."""
            if isinstance(records, Response):  # read over HTTP and refused: the refusal names the fields
                return records
            if isinstance(records, ParsedBatch):  # read and checked over HTTP
                return answer(records)
            model = holder.current
            if model is None:
                raise ServiceUnavailable(holder.problem or "no model loaded yet")
            checked = model.parser.parse_python(records)  # a call from Python: the same checks, RequestError if not
            return answer_body(model, model.predictor.predict_records(checked))

        @bentoml.api(route="/metadata", input_spec=MetadataInput, output_spec=MetadataOutput)
        async def metadata(self) -> Any:
            """The served model: name, version, alias, run, training metrics and schema."""
            model = holder.current
            if model is None:
                return not_ready(holder)
            return Response(
                dumps(model.metadata()), headers={VERSION_HEADER: model.version}, media_type="application/json"
            )

        @bentoml.on_startup
        async def follow_champion(self) -> None:
            gc.set_threshold(*GC_THRESHOLDS)
            log.info("model source: %s", source.description)
            self._follower = asyncio.create_task(holder.run(), name="neuroflow-follow-champion")

        @bentoml.on_shutdown
        async def stop_following(self) -> None:
            task = getattr(self, "_follower", None)
            if task is not None:
                task.cancel()

        def __is_ready__(self) -> bool:
            return holder.current is not None

    # One guard for every path (the typed API, the FastAPI routes and BentoML's own pages), then our OpenAPI document.
    service: Any = Neuroflow
    service.add_asgi_middleware(RequestGuard, settings=settings.service)
    service.add_asgi_middleware(OpenAPIDocument, holder=holder, document=lambda: service.openapi_spec.asdict())
    if settings.service.direct_predict:
        service.add_asgi_middleware(DirectPredict, holder=holder, settings=settings.service)
    return service, holder


config = os.environ.get(CONFIG_ENV)
settings = load_settings(Path(config) if config else None)
source = model_source(settings, dict(os.environ))
Neuroflow, holder = build_service(settings, source)
