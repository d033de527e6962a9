"""The HTTP routes (`/predict`, `/metadata`, `/reload`) and the holder that keeps the champion loaded and current.

This is a plain FastAPI app; `neuroflow.service.service` mounts it into the BentoML service, which adds `/livez`,
`/readyz`, `/metrics` and the OpenAPI page. Keeping it free of BentoML lets the tests drive it at every depth.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.routing import Route

from neuroflow.errors import ModelNotFoundError, RegistryUnavailableError, UntrustedModelError
from neuroflow.models.inference import Prediction
from neuroflow.service.guard import RequestGuard, forwarded
from neuroflow.service.loading import LoadedModel
from neuroflow.service.requests import REQUEST_EXAMPLE_HINT, RequestError, RequestProblem, dumps
from neuroflow.settings import ServiceSettings, Settings

log = logging.getLogger("neuroflow.service")

VERSION_HEADER = "X-Model-Version"
MAX_STARTUP_BACKOFF_SECONDS = 15.0
LOOPBACK = ("127.0.0.1", "::1")
APP_PATHS = ("/predict", "/metadata", "/reload")  # this app's routes; BentoML serves the rest


class ModelSource(Protocol):
    """Where models come from: the registry (follows the alias) or a model baked into the Bento (fixed)."""

    follows: bool
    description: str

    def current_version(self) -> str: ...

    def load(self, version: str) -> LoadedModel: ...


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
        self.problem: str | None = "starting: no model loaded yet"
        self._lock = asyncio.Lock()
        self.refused: dict[str, str] = {}  # versions whose files failed the safe loader's checks, and why

    async def refresh(self) -> Outcome:
        """Load the source's current version if it is not the one served; a no-op otherwise."""
        async with self._lock:
            previous = self.current.version if self.current else None
            version = await anyio.to_thread.run_sync(self.source.current_version)
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
                "serving %s version %s (was %s; loaded in %.2f s)",
                loaded.info.name,
                loaded.version,
                previous or "none",
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
    """What the routes read from `request.app.state.neuroflow`: the holder of the served model and the limits."""

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


async def predict(request: Request) -> Response:
    """POST /predict: one prediction per record, from the model that was current when the request arrived."""
    state = state_of(request)
    model = state.holder.current  # read once: this request is answered by this model, whatever happens meanwhile
    if model is None:
        return not_ready(state.holder)
    try:
        records = model.parser.parse(await read_body(request, state.settings.max_body_bytes))
    except RequestError as error:
        return refuse(error, model.version)
    prediction = model.predictor.predict_records(records)
    if (refused := unrepresentable(prediction, model.version)) is not None:
        return refused
    body = {
        "model_name": model.info.name,
        "model_version": model.version,
        "predictions": prediction.to_records(model.schema.classes),
    }
    return Response(dumps(body), headers={VERSION_HEADER: model.version}, media_type="application/json")


def unrepresentable(prediction: Prediction, version: str) -> Response | None:
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
    return refuse(RequestError(422, "invalid request", problems), version)


async def metadata(request: Request) -> Response:
    """GET /metadata: the served model, its training facts and its schema."""
    holder = state_of(request).holder
    model = holder.current
    if model is None:
        return not_ready(holder)
    return Response(dumps(model.metadata()), headers={VERSION_HEADER: model.version}, media_type="application/json")


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


PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    "200": {"description": "One prediction per record, and the model version that computed them."},
    "400": {"description": "Malformed JSON, an empty body, or both Content-Length and Transfer-Encoding."},
    "401": {"description": "Missing or wrong bearer token (only when auth is on)."},
    "413": {"description": "The body is over the configured size."},
    "415": {"description": "The body is not application/json."},
    "422": {"description": "A record does not fit the schema; each problem names its field."},
    "503": {"description": "No model loaded yet."},
}


def create_app(
    settings: Settings, source: ModelSource, after_swap: Callable[[LoadedModel], None] | None = None
) -> tuple[FastAPI, ModelHolder]:
    """The FastAPI app and the model holder behind it; `after_swap` runs once a new model is in place."""
    app = FastAPI(
        title="neuroflow",
        description="Predictions from the champion model. Send raw feature values as in the training data.",
        version="1",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    # /predict is served by a plain Starlette route, which skips FastAPI's per-request dependency solving (about 12 %
    # of throughput); the FastAPI route behind it is never reached and only documents the endpoint on the OpenAPI page.
    app.router.routes.append(Route("/predict", predict, methods=["POST"]))
    app.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        summary="Predict from a batch of records",
        tags=["Prediction"],
        responses=PREDICT_RESPONSES,
        openapi_extra=request_body_openapi(None),
    )
    app.add_api_route("/metadata", metadata, methods=["GET"], summary="The served model and its schema", tags=["Model"])
    app.add_api_route(
        "/reload", reload, methods=["POST"], summary="Load the current champion now (authenticated)", tags=["Model"]
    )

    def on_swap(loaded: LoadedModel) -> None:
        document_request_body(app, loaded)
        if after_swap is not None:
            after_swap(loaded)

    holder = ModelHolder(source, settings, on_swap)
    app.state.neuroflow = ServiceState(holder, settings.service)
    app.add_middleware(RequestGuard, settings=settings.service)
    return app, holder


def document_request_body(app: FastAPI, loaded: LoadedModel) -> None:
    """Show the loaded model's request schema on the OpenAPI page."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path == "/predict":
            route.openapi_extra = request_body_openapi(loaded)


def request_body_openapi(model: LoadedModel | None) -> dict[str, Any]:
    """The `/predict` request body for the OpenAPI page, generated from the loaded model's schema."""
    if model is None:
        schema: dict[str, Any] = {"type": "object", "description": f"No model loaded yet; {REQUEST_EXAMPLE_HINT}"}
    else:
        schema = model.parser.json_schema()
        schema["description"] = f"Records for {model.info.name} version {model.version}; {REQUEST_EXAMPLE_HINT}"
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
