"""The holder that keeps the champion loaded and current, what `/predict` does with a request, and the routes the
typed BentoML API does not cover (GET `/metadata`, `/reload`, the Swagger page at `/docs`).

No BentoML here: `neuroflow.service.service` declares the typed API on these functions and mounts this FastAPI app
beside it; BentoML adds `/livez`, `/readyz`, `/metrics` and `/docs.json`.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.errors import (
    ModelNotFoundError,
    RegistryUnavailableError,
    RequestError,
    RequestProblem,
    UntrustedModelError,
)
from ..core.predictionlog import PredictionLog, feedback_frame, new_request_ids, store_errors
from ..core.settings import ServiceSettings, Settings
from ..core.store import reason
from ..models.inference import Prediction
from ..models.requests import dumps, label_problem
from .guard import forwarded
from .loading import LoadedModel
from .recording import Recorder
from .responses import docs_page

log = logging.getLogger("neuroflow.service")

VERSION_HEADER = "X-Model-Version"
MAX_STARTUP_BACKOFF_SECONDS = 15.0
LOOPBACK = ("127.0.0.1", "::1")


class ModelSource(Protocol):
    """Where models come from: the registry (follows the alias) or a model baked into the Bento (fixed)."""

    follows: bool
    description: str

    def current_version(self) -> str: ...

    def shadow_version(self, mode: str, champion: str | None) -> str | None: ...

    def load(self, version: str) -> LoadedModel: ...

    def model_card(self, version: str) -> str: ...


@dataclass
class Outcome:
    previous: str | None
    current: str | None
    changed: bool

    def to_json(self) -> dict[str, Any]:
        return {"previous_version": self.previous, "model_version": self.current, "changed": self.changed}


class ModelHolder:
    """Holds the served model. A new version is loaded beside the old one, then swapped in with one assignment, so
    every request uses exactly one model from start to finish and reports that model's version."""

    def __init__(self, source: ModelSource, settings: Settings, on_swap: Callable[[LoadedModel], None]) -> None:
        self.source = source
        self.settings = settings.service
        self.on_swap = on_swap
        self.current: LoadedModel | None = None
        self.shadow: LoadedModel | None = None  # scored beside the champion for the log, never answered with
        self.problem: str | None = "starting: no model loaded yet"
        self._lock = asyncio.Lock()
        self.refused: dict[str, str] = {}  # versions whose files failed the safe loader's checks, and why
        self.recorder = Recorder(None, lambda: self.shadow)

    async def refresh(self) -> Outcome:
        """Load the source's current version if it is not the one served (a no-op otherwise), then the shadow."""
        outcome = await self._refresh_champion()
        await self.refresh_shadow()
        return outcome

    async def refresh_shadow(self) -> None:
        """Follow `service.shadow` (the newest non-champion version, or an alias); a failure here only logs."""
        mode = self.settings.shadow
        if mode == "off" or not self.source.follows:
            return
        champion = self.current.version if self.current else None
        try:
            version = await anyio.to_thread.run_sync(self.source.shadow_version, mode, champion)
            if version is None or version == champion:
                if self.shadow is not None:
                    log.info("no shadow now (%s names %s)", mode, version or "no version")
                self.shadow = None
                return
            if (self.shadow is not None and self.shadow.version == version) or version in self.refused:
                return
            self.shadow = await anyio.to_thread.run_sync(self.source.load, version)
            log.info("shadow: version %s scores every request beside the champion (%s)", version, mode)
        except Exception as error:
            log.warning("shadow %s not loaded (the champion serves on): %s", mode, error)

    async def _refresh_champion(self) -> Outcome:
        async with self._lock:
            previous = self.current.version if self.current else None
            asked = time.perf_counter()
            version = await anyio.to_thread.run_sync(self.source.current_version)
            looked_up = time.perf_counter() - asked
            if version == previous:
                return Outcome(previous, previous, False)
            if version in self.refused:
                raise UntrustedModelError(self.refused[version])
            started = time.perf_counter()
            try:
                loaded = await anyio.to_thread.run_sync(self.source.load, version)
            except UntrustedModelError as error:
                self.refused[version] = f"refused to load version {version}: {error}"
                log.error("%s; still serving %s", self.refused[version], self._serving)
                raise UntrustedModelError(self.refused[version]) from None
            self.current = loaded
            self.problem = None
            self.on_swap(loaded)
            log.info(
                "serving %s version %s (was %s; registry lookup %.2f s, download and load %.2f s)",
                loaded.info.name,
                loaded.version,
                previous or "none",
                looked_up,
                time.perf_counter() - started,
            )
            return Outcome(previous, loaded.version, True)

    async def run(self) -> None:
        """Load the model at start (a bounded number of tries), then follow the champion until cancelled."""
        attempts = self.settings.startup_attempts
        delay = 1.0
        for attempt in range(1, attempts + 1):
            try:
                await self.refresh()
                break
            except (RegistryUnavailableError, ModelNotFoundError) as error:
                self.problem = str(error)
                if attempt == attempts:
                    log.error(
                        "no model loaded after %d attempts: %s. /readyz answers 503%s",
                        attempts,
                        error,
                        f"; checking again every {self.settings.poll_seconds:g} s"
                        if self._polling
                        else "; restart the service once the registry is back",
                    )
                    break
                log.warning(
                    "no model yet (attempt %d/%d): %s. /readyz answers 503; retrying in %.0f s",
                    attempt,
                    attempts,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_STARTUP_BACKOFF_SECONDS)
            except UntrustedModelError as error:
                self.problem = str(error)
                break
            except Exception as error:
                self.problem = f"loading the model failed: {error}"
                log.exception("loading the model failed")
                break
        while self._polling:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.refresh()
            except UntrustedModelError as error:
                self.problem = None if self.current else str(error)  # logged once, when it was refused
            except Exception as error:
                self.problem = None if self.current else str(error)
                log.warning("champion check failed (still serving %s): %s", self._serving, error)

    @property
    def _polling(self) -> bool:
        return self.source.follows and self.settings.poll_seconds > 0

    @property
    def _serving(self) -> str:
        return f"version {self.current.version}" if self.current else "nothing"


@dataclass(frozen=True)
class ServiceState:
    """What the routes read from `request.app.state.neuroflow`: the holder of the served model and the limits (the
    prediction log is the holder's recorder's)."""

    holder: ModelHolder
    settings: ServiceSettings


def state_of(request: Request) -> ServiceState:
    """The service state the app was created with."""
    state: ServiceState = request.app.state.neuroflow
    return state


def refuse(error: RequestError, version: str | None = None) -> Response:
    """A request error as the JSON body every 4xx/5xx of the service has, naming the field."""
    headers = {VERSION_HEADER: version} if version else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(dumps(error.to_json()), error.status, headers, media_type="application/json")


def require_local_or_token(request: Request) -> Response | None:
    """Without a token, only a process on this machine talking to the service directly may ask for a reload (403
    otherwise): a request that carries proxy headers did not come straight from this machine, whatever its peer
    address says. With a token, `RequestGuard` has already checked it."""
    if state_of(request).settings.auth_token is not None:
        return None
    client = request.scope.get("client")
    if client is None or client[0] not in LOOPBACK or forwarded(request.scope["headers"]):
        return refuse(
            RequestError(
                403,
                "forbidden",
                [RequestProblem("Authorization", "set service.auth_token to reload from another host or via a proxy")],
            )
        )
    return None


def not_ready(holder: ModelHolder) -> Response:
    """503 naming why no model is served yet."""
    problem = holder.problem or "no model loaded yet"
    return refuse(RequestError(503, "no model loaded", [RequestProblem("model", problem)]))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as more than `limit` bytes have arrived (a declared length over it was
    refused by `RequestGuard` before anything was read)."""
    too_large = RequestError(
        413, "body too large", [RequestProblem("body", f"the body is over {limit} bytes; send fewer records")]
    )
    chunks, size = [], 0  # counted as they arrive, whatever the headers declare
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class ParsedBatch:
    """A `/predict` request read and validated: the model that was current when it arrived, and its records."""

    model: LoadedModel
    records: list[dict[str, Any]]
    recorder: Recorder | None = None


async def parse_predict(request: Request, holder: ModelHolder, settings: ServiceSettings) -> ParsedBatch | Response:
    """Read and validate a `/predict` body against the served model's schema; the refusal to send when it fails."""
    model = holder.current  # read once: this request is answered by this model, whatever happens meanwhile
    if model is None:
        return not_ready(holder)
    try:
        records = model.parser.parse(await read_body(request, settings.max_body_bytes))
        return ParsedBatch(model, records, holder.recorder)
    except RequestError as error:
        return refuse(error, model.version)


def answer(batch: ParsedBatch) -> Response:
    """The HTTP answer to a validated `/predict` request: `predict_answer`'s body, or its refusal."""
    try:
        body = predict_answer(batch)
    except RequestError as error:
        return refuse(error, batch.model.version)
    return Response(dumps(body), headers={VERSION_HEADER: batch.model.version}, media_type="application/json")


def predict_answer(batch: ParsedBatch) -> dict[str, Any]:
    """The one door to `/predict`, for every caller (the direct path, BentoML's dispatch, a call from Python): one
    prediction per record, from the model the request was validated against, with its version, recorded as served.
    A RequestError (422) for records whose answer would not be a finite number."""
    model = batch.model
    prediction = model.predictor.predict_records(batch.records)
    if (refused := unrepresentable(prediction)) is not None:
        raise refused
    ids = new_request_ids(len(batch.records))
    body = answer_body(model, prediction, ids)
    if batch.recorder is not None:
        batch.recorder.served(model, ids, batch.records, prediction)
    return body


def answer_body(model: LoadedModel, prediction: Prediction, ids: list[str]) -> dict[str, Any]:
    """The JSON answer to `/predict` (typed by `neuroflow.service.responses.response_type`): each prediction with
    the request id its record is logged under (send it back with the true label to `/feedback`)."""
    predictions = prediction.to_records(model.schema.classes)
    for request_id, item in zip(ids, predictions, strict=True):
        item["request_id"] = request_id
    return {"model_name": model.info.name, "model_version": model.version, "predictions": predictions}


def unrepresentable(prediction: Prediction) -> RequestError | None:
    """422 for the records whose answer is not a finite number (inputs the request model let through, but the
    network's arithmetic overflowed on), rather than a 500 from the JSON encoder."""
    values = prediction.probabilities if prediction.probabilities is not None else prediction.labels
    finite = np.isfinite(np.asarray(values, dtype="float64").reshape(len(prediction.labels), -1)).all(axis=1)
    if finite.all():
        return None
    problems = [
        RequestProblem(f"records[{row}]", "the model cannot compute an answer for these values (they overflow)")
        for row in np.flatnonzero(~finite)[:20]
    ]
    return RequestError(422, "invalid request", problems)


def metadata_response(holder: ModelHolder) -> Response:
    """The one `/metadata` answer (GET for browsers and curl, POST in the typed API): the served model, its training
    facts and its schema; 503 before a model is loaded."""
    model = holder.current
    if model is None:
        return not_ready(holder)
    shadow = holder.shadow  # scored beside the champion for the log, never answered with
    body = model.metadata() | {
        "shadow": {"model_version": shadow.version, "mode": holder.settings.shadow} if shadow is not None else None
    }
    return Response(dumps(body), headers={VERSION_HEADER: model.version}, media_type="application/json")


async def metadata(request: Request) -> Response:
    """GET /metadata: the served model, its training facts and its schema."""
    return metadata_response(state_of(request).holder)


async def reload(request: Request) -> Response:
    """POST /reload: load the current champion now."""
    if (refused := require_local_or_token(request)) is not None:
        return refused
    try:
        outcome = await state_of(request).holder.refresh()
    except (RegistryUnavailableError, ModelNotFoundError) as error:
        return refuse(RequestError(503, "reload failed", [RequestProblem("registry", str(error))]))
    except UntrustedModelError as error:
        return refuse(RequestError(409, "model refused", [RequestProblem("model", str(error))]))
    return Response(dumps(outcome.to_json()), media_type="application/json")


FEEDBACK_EXAMPLE = '{"feedback": [{"request_id": "3f2a...-0", "label": 1}]}'


def read_feedback(body: bytes, model: LoadedModel | None) -> tuple[list[str], list[Any]]:
    """The ids and labels of a `/feedback` body, each label checked against the served model's target."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise RequestError(
            400, "malformed JSON", [RequestProblem("body", f"send JSON like {FEEDBACK_EXAMPLE}")]
        ) from None
    items = payload.get("feedback") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise RequestError(
            422, "invalid request", [RequestProblem("feedback", f"a non-empty list: {FEEDBACK_EXAMPLE}")]
        )
    problems, ids, labels = [], [], []
    for index, item in enumerate(items):
        where = f"feedback[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("request_id"), str) or "label" not in item:
            problems.append(RequestProblem(where, 'an object with "request_id" (text) and "label"'))
            continue
        label = item["label"]
        if model is not None and (problem := label_problem(model.schema, label)) is not None:
            problems.append(RequestProblem(f"{where}.label", problem))
        ids.append(item["request_id"])
        labels.append(label)
    if problems:
        raise RequestError(422, "invalid request", problems[:50])
    return ids, labels


def log_unavailable(prediction_log: PredictionLog, error: Exception) -> Response:
    """503 naming the prediction log's store and why it failed."""
    problem = f"{prediction_log.store.description} failed: {reason(error)}"
    return refuse(RequestError(503, "prediction log unavailable", [RequestProblem("prediction_log", problem)]))


async def feedback(request: Request) -> Response:
    """POST /feedback: the true labels (or values) of served records, by request id; unknown ids are reported."""
    state = state_of(request)
    prediction_log = state.holder.recorder.log
    if prediction_log is None:
        problem = "the prediction log is off (service.prediction_log: off): there is nothing to join labels to"
        return refuse(RequestError(409, "prediction log off", [RequestProblem("service.prediction_log", problem)]))
    try:
        ids, labels = read_feedback(await read_body(request, state.settings.max_body_bytes), state.holder.current)
        await anyio.to_thread.run_sync(prediction_log.flush)  # records answered a moment ago are joinable now
        known = await anyio.to_thread.run_sync(prediction_log.store.known_ids, ids)
    except RequestError as error:
        return refuse(error)
    except store_errors() as error:  # the store failed; anything else is a bug, and a 500
        return log_unavailable(prediction_log, error)
    unknown = [request_id for request_id in ids if request_id not in known]
    if len(unknown) == len(ids):
        problems = [
            RequestProblem(f"feedback[{index}].request_id", f"no served record has the id {request_id!r}")
            for index, request_id in enumerate(ids[:50])
        ]
        return refuse(RequestError(404, "unknown request ids", problems))
    kept = [(request_id, label) for request_id, label in zip(ids, labels, strict=True) if request_id in known]
    frame = feedback_frame([pair[0] for pair in kept], [pair[1] for pair in kept])
    try:
        await anyio.to_thread.run_sync(prediction_log.store.write_feedback, frame)
    except store_errors() as error:
        return log_unavailable(prediction_log, error)
    return Response(dumps({"recorded": len(kept), "unknown_ids": unknown}), media_type="application/json")


async def docs_redirect(_: Request) -> Response:
    """GET /: the Swagger page lives at /docs."""
    return RedirectResponse("/docs", status_code=307)


async def docs(request: Request) -> Response:
    """GET /docs: the Swagger page, titled with the served model."""
    model = state_of(request).holder.current
    title = f"neuroflow: {model.info.name} v{model.version}" if model else "neuroflow"
    return HTMLResponse(docs_page(title))


async def model_card(request: Request) -> Response:
    """GET /model-card: the served version's model card (Markdown), as the registry holds it now."""
    holder = state_of(request).holder
    model = holder.current
    if model is None:
        return not_ready(holder)
    card = model.info.card
    try:
        card = await asyncio.to_thread(holder.source.model_card, model.version) or card
    except Exception as error:  # the registry is down: the card read at load time stands
        log.warning("could not read the model card of v%s: %s", model.version, reason(error))
    if not card:
        card = (
            f"# {model.info.name} v{model.version}\n\n"
            "This version has no model card (it was registered before neuroflow wrote them).\n"
        )
    return Response(card, headers={VERSION_HEADER: model.version}, media_type="text/markdown; charset=utf-8")


def create_app(
    settings: Settings, source: ModelSource, after_swap: Callable[[LoadedModel], None] | None = None
) -> tuple[FastAPI, ModelHolder]:
    """The routes BentoML's typed API does not cover (GET /metadata, /reload, the Swagger page) and the model holder
    behind all of them; `after_swap` runs once a new model is in place."""
    app = FastAPI(title="neuroflow", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    # GET /metadata for browsers and curl; the typed API has it as POST for BentoML's clients, and documents it
    app.router.routes.append(Route("/metadata", metadata, methods=["GET"]))
    app.router.routes.append(Route("/", docs_redirect, methods=["GET"]))
    app.router.routes.append(Route("/docs", docs, methods=["GET"]))
    app.add_api_route(
        "/reload", reload, methods=["POST"], summary="Load the current champion now (authenticated)", tags=["Model"]
    )
    app.router.routes.append(Route("/feedback", feedback, methods=["POST"]))
    app.router.routes.append(Route("/model-card", model_card, methods=["GET"]))
    holder = ModelHolder(source, settings, after_swap or (lambda _: None))
    app.state.neuroflow = ServiceState(holder, settings.service)
    return app, holder
