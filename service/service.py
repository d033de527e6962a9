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

from ..core.errors import ModelNotFoundError
from ..core.predictionlog import PredictionLog, open_store, window_start
from ..core.settings import Settings, load_settings
from ..core.store import ModelInfo, champion_version, mlflow_client, reason
from ..models.livemetrics import labelled, live_metrics
from .api import DirectPredict, OpenAPIDocument, typed_api
from .app import ModelHolder, ParsedBatch, answer, create_app, metadata_response, predict_answer
from .guard import RequestGuard
from .loading import LoadedModel, load_directory, load_registered
from .recording import Recorder

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

    def model_card(self, version: str) -> str:
        """The version's description in the registry now: its model card (written after its promotion decision)."""
        return str(self.client.get_model_version(self.name, version).description or "")

    def shadow_version(self, mode: str, champion: str | None) -> str | None:
        """`latest`: the newest registered version that is not the champion; else the version `mode` (an alias)
        points at. None when there is none."""
        if mode == "latest":
            versions = [int(v.version) for v in self.client.search_model_versions(f"name='{self.name}'")]
            others = [version for version in versions if str(version) != champion]
            return str(max(others)) if others else None
        try:
            return champion_version(self.client, self.name, mode)
        except ModelNotFoundError:
            return None

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

    def shadow_version(self, mode: str, champion: str | None) -> str | None:
        return None  # a Bento serves its one baked model

    def model_card(self, version: str) -> str:
        """The card baked in with the model (the registry is not consulted)."""
        return ModelInfo.from_json(bentoml.models.get(self.tag).info.metadata).card

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


_METRICS: dict[str, Any] = {}


def prometheus(name: str) -> Any:
    """The service's own Prometheus metrics, made once per process after BentoML has set up its multiprocess
    collection (so they appear on /metrics)."""
    if not _METRICS:
        import prometheus_client

        _METRICS["dropped"] = prometheus_client.Counter(
            "neuroflow_prediction_log_dropped", "Prediction records that could not be written to the prediction log"
        )
        _METRICS["shadow_failures"] = prometheus_client.Counter(
            "neuroflow_shadow_failures", "Records the shadow version failed to score (answers are unaffected)"
        )
        _METRICS["live"] = prometheus_client.Gauge(
            "neuroflow_live_metric",
            "Live metrics from feedback over monitoring.window_hours, per role (champion/shadow) and version",
            ["role", "model_version", "metric"],
            multiprocess_mode="livemostrecent",
        )
    return _METRICS[name]


def start_recorder(settings: Settings, holder: ModelHolder, metrics: bool) -> Recorder:
    """The prediction log and the shadow's thread, counting what they drop on /metrics."""
    store = open_store(settings.service.prediction_log)
    dropped = prometheus("dropped").inc if metrics else None
    prediction_log = None
    if store is not None:
        prediction_log = PredictionLog(
            store, settings.service.log_flush_seconds, settings.service.log_buffer_rows, dropped
        )
        log.info("prediction log: %s", store.description)
    failures = prometheus("shadow_failures").inc if metrics else None
    return Recorder(prediction_log, lambda: holder.shadow, failures).start()


def live_scores(settings: Settings, prediction_log: PredictionLog, model: LoadedModel) -> dict[tuple[str, str], Any]:
    """The live metrics of every version with labelled records in the monitoring window."""
    records = prediction_log.store.read(model.info.name, window_start(settings.monitoring.window_hours))
    joined = labelled(records, prediction_log.store.read_feedback())
    return live_metrics(joined, model.schema.task, model.schema.classes)


async def keep_live_gauges(settings: Settings, holder: ModelHolder) -> None:
    """Every `service.live_metrics_seconds`: the served records with feedback, scored per version, as gauges."""
    gauge = prometheus("live")
    prediction_log = holder.recorder.log
    assert prediction_log is not None
    while True:
        await asyncio.sleep(settings.service.live_metrics_seconds)
        model = holder.current
        if model is None:
            continue
        try:
            scores = await asyncio.to_thread(live_scores, settings, prediction_log, model)
            for (role, version), values in scores.items():
                for metric, value in values.items():
                    gauge.labels(role, version, metric).set(value)
        except Exception as error:
            log.warning("live metrics not updated: %s", reason(error))


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
            return predict_answer(ParsedBatch(model, checked, holder.recorder))

        @bentoml.api(route="/metadata", input_spec=MetadataInput, output_spec=MetadataOutput)
        async def metadata(self) -> Any:
            """The served model: name, version, alias, run, training metrics and schema."""
            return metadata_response(holder)

        @bentoml.on_startup
        async def follow_champion(self) -> None:
            gc.set_threshold(*GC_THRESHOLDS)
            log.info("model source: %s", source.description)
            holder.recorder = start_recorder(settings, holder, metrics)
            self._follower = asyncio.create_task(holder.run(), name="neuroflow-follow-champion")
            self._gauges = None
            if metrics and holder.recorder.log is not None and settings.service.live_metrics_seconds > 0:
                self._gauges = asyncio.create_task(keep_live_gauges(settings, holder), name="neuroflow-live-metrics")

        @bentoml.on_shutdown
        async def stop_following(self) -> None:
            for task in (getattr(self, "_follower", None), getattr(self, "_gauges", None)):
                if task is not None:
                    task.cancel()
            await asyncio.to_thread(holder.recorder.close)  # SIGTERM included: nothing buffered is lost

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
