"""The typed BentoML API: input and output models whose JSON schema is the served model's, so BentoML's clients, its
`/schema.json` and the OpenAPI page all describe what the champion accepts and answers, and follow it on a swap.

A request is read and checked by the service's own parser (`neuroflow.models.requests`): the errors keep the
contract the README documents (status, `{"error", "detail": [{"field", "problem"}]}`), not BentoML's generic 400.
"""

import json
from collections.abc import Callable
from typing import Any, ClassVar

import bentoml
from starlette.requests import Request
from starlette.responses import Response

from ..core.settings import ServiceSettings
from ..models.requests import REQUEST_EXAMPLE_HINT
from .app import ModelHolder, answer, parse_predict
from .guard import ASGIApp, Receive, Scope, Send
from .responses import METADATA_SCHEMA, openapi_document, response_schema

DOCUMENT_PATHS = frozenset({"/docs.json", "/openapi.json"})


def typed_api(holder: ModelHolder, settings: ServiceSettings) -> tuple[type, type, type, type]:
    """The input and output models of `/predict` and `/metadata` for the model `holder` serves."""

    class PredictInput(bentoml.IODescriptor):
        """Records of raw feature values, one per prediction."""

        records: list[dict[str, Any]]
        media_type: ClassVar[str | None] = "application/json"

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            model = holder.current
            if model is None:
                return {
                    "type": "object",
                    "title": "PredictInput",
                    "description": f"no model loaded yet; {REQUEST_EXAMPLE_HINT}",
                    "properties": {"records": {"type": "array", "items": {"type": "object"}}},
                    "required": ["records"],
                }
            schema = model.parser.json_schema()
            schema["title"] = "PredictInput"
            schema["description"] = f"Records for {model.info.name} version {model.version}; {REQUEST_EXAMPLE_HINT}"
            return schema

        @classmethod
        async def from_http_request(cls, request: Request, serde: Any) -> Any:
            parsed = await parse_predict(request, holder, settings)
            return cls.model_construct(records=parsed)  # the method sends a refusal (a Response) as it is

    class PredictOutput(bentoml.IODescriptor):
        """One prediction per record, typed as the training target, with the version that computed them."""

        model_name: str
        model_version: str
        predictions: list[dict[str, Any]]
        media_type: ClassVar[str | None] = "application/json"

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return response_schema(holder.current.schema if holder.current else None)

    class MetadataInput(bentoml.IODescriptor):
        """No input: `{}`."""

        media_type: ClassVar[str | None] = "application/json"

        @classmethod
        async def from_http_request(cls, request: Request, serde: Any) -> Any:
            return cls.model_construct()  # whatever the body holds, metadata takes none

    class MetadataOutput(bentoml.IODescriptor):
        """The served model."""

        media_type: ClassVar[str | None] = "application/json"

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return dict(METADATA_SCHEMA)

    return PredictInput, PredictOutput, MetadataInput, MetadataOutput


class OpenAPIDocument:
    """Serves BentoML's OpenAPI document (`/docs.json`, and `/openapi.json` where FastAPI users look) made about this
    service: titled with the served model and version, our error answers, and a real example request."""

    def __init__(self, app: ASGIApp, holder: ModelHolder, document: Callable[[], dict[str, Any]], **_: Any) -> None:
        self.app = app
        self.holder = holder
        self.document = document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCUMENT_PATHS or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        model = self.holder.current
        example = {"records": model.example} if model is not None and model.example else None
        name, version = (model.info.name, model.version) if model is not None else (None, None)
        body = json.dumps(openapi_document(self.document(), name, version, example)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class DirectPredict:
    """POST /predict answered here, with the typed API's own two steps (`parse_predict`, then `answer`), rather than
    through BentoML's per-request dispatch (router, signature binding, response wrapping: about a third of a one-row
    request's time). Inside BentoML's metrics, tracing, timeout and guard middleware, so those still see every
    request. `service.direct_predict: false` sends it through BentoML's dispatch instead; the answers are the same."""

    def __init__(self, app: ASGIApp, holder: ModelHolder, settings: ServiceSettings, **_: Any) -> None:
        self.app = app
        self.holder = holder
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        parsed = await parse_predict(Request(scope, receive), self.holder, self.settings)
        response = parsed if isinstance(parsed, Response) else answer(parsed)
        await response(scope, receive, send)
