"""The holder that keeps the champion loaded and current, what `/predict` does with a request, and the routes the
typed BentoML API does not cover (GET `/metadata`, `/reload`, the Swagger page at `/docs`).

No BentoML here: `neuroflow.service.service` declares the typed API on these functions and mounts this FastAPI app
beside it; BentoML adds `/livez`, `/readyz`, `/metrics` and `/docs.json`.
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
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from neuroflow.errors import ModelNotFoundError, RegistryUnavailableError, UntrustedModelError
from neuroflow.models.inference import Prediction
from neuroflow.service.guard import forwarded
from neuroflow.service.loading import LoadedModel
from neuroflow.service.requests import RequestError, RequestProblem, dumps
from neuroflow.service.responses import docs_page
from neuroflow.settings import ServiceSettings, Settings

log = logging.getLogger("neuroflow.service")

VERSION_HEADER = "X-Model-Version"
MAX_STARTUP_BACKOFF_SECONDS = 15.0
LOOPBACK = ("127.0.0.1", "::1")


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


@dataclass(frozen=True)
class ParsedBatch:
    """A `/predict` request read and validated: the model that was current when it arrived, and its records."""

    model: LoadedModel
    records: list[dict[str, Any]]


async def parse_predict(request: Request, holder: ModelHolder, settings: ServiceSettings) -> ParsedBatch | Response:
    """Read and validate a `/predict` body against the served model's schema; the refusal to send when it fails."""
    model = holder.current  # read once: this request is answered by this model, whatever happens meanwhile
    if model is None:
        return not_ready(holder)
    try:
        return ParsedBatch(model, model.parser.parse(await read_body(request, settings.max_body_bytes)))
    except RequestError as error:
        return refuse(error, model.version)


def answer(batch: ParsedBatch) -> Response:
    """One prediction per record, from the model the request was validated against, with its version."""
    model = batch.model
    prediction = model.predictor.predict_records(batch.records)
    if (refused := unrepresentable(prediction, model.version)) is not None:
        return refused
    return Response(
        dumps(answer_body(model, prediction)), headers={VERSION_HEADER: model.version}, media_type="application/json"
    )


def answer_body(model: LoadedModel, prediction: Prediction) -> dict[str, Any]:
    """The JSON answer to `/predict` (typed by `neuroflow.service.responses.response_type`)."""
    return {
        "model_name": model.info.name,
        "model_version": model.version,
        "predictions": prediction.to_records(model.schema.classes),
    }


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


async def docs_redirect(_: Request) -> Response:
    """GET /: the Swagger page lives at /docs."""
    return RedirectResponse("/docs", status_code=307)


async def docs(request: Request) -> Response:
    """GET /docs: the Swagger page, titled with the served model."""
    model = state_of(request).holder.current
    title = f"neuroflow: {model.info.name} v{model.version}" if model else "neuroflow"
    return HTMLResponse(docs_page(title))


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
    holder = ModelHolder(source, settings, after_swap or (lambda _: None))
    app.state.neuroflow = ServiceState(holder, settings.service)
    return app, holder
