"""The typed answers of the service, generated from the served model's schema, and the OpenAPI document around them.

No BentoML here: the typed BentoML API (`neuroflow.service.api`) and the tests use these functions.
"""

import html
from typing import Any

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from ..models.requests import inline
from ..models.schema import DataSchema

# The error body every 4xx/5xx of the service has.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "what kind of problem"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {
                    "field": {"type": "string", "description": "where, as a JSON path such as records[0].age"},
                    "problem": {"type": "string", "description": "what is wrong and what to send instead"},
                },
            },
        },
    },
}
PREDICT_ERRORS: dict[str, str] = {
    "400": "Malformed JSON, an empty body, or both Content-Length and Transfer-Encoding.",
    "401": "Missing or wrong bearer token (only when service.auth_token is set).",
    "413": "The body is over service.max_body_bytes.",
    "415": "The body is not application/json.",
    "422": "A record does not fit the schema; each problem names its field.",
    "503": "No model loaded yet.",
}


def response_type(schema: DataSchema) -> Any:
    """The `/predict` answer as a TypedDict: the model's identity and one prediction per record, typed as the
    training target was, with one probability per class when classifying."""
    item: dict[str, Any] = {"prediction": schema.target_type, "request_id": str}
    if schema.classes:
        item["probabilities"] = TypedDict("Probabilities", dict.fromkeys(schema.classes, float))  # type: ignore[operator]
    prediction: Any = TypedDict("Prediction", item)  # type: ignore[misc]
    fields = {"model_name": str, "model_version": str, "predictions": list[prediction]}
    return TypedDict("PredictResponse", fields)  # type: ignore[operator]


def response_schema(schema: DataSchema | None) -> dict[str, Any]:
    """The JSON schema of the `/predict` answer for the served model (a generic one before any model is loaded)."""
    if schema is None:
        return {
            "type": "object",
            "title": "PredictResponse",
            "description": "no model loaded yet: the answer's types follow the served model",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "predictions": {"type": "array", "items": {"type": "object"}},
            },
        }
    document = TypeAdapter(response_type(schema)).json_schema()
    return inline(document, document.pop("$defs", {}))


METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Metadata",
    "description": "The served model: its name, version, alias, run, training metrics and schema.",
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "alias": {"type": ["string", "null"]},
        "run_id": {"type": ["string", "null"]},
        "task": {"type": "string", "enum": ["binary", "multiclass", "regression"]},
        "classes": {"type": ["array", "null"], "items": {"type": "string"}},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "schema": {"type": "object"},
        "shadow": {
            "type": ["object", "null"],
            "description": "The version scored beside the champion for the prediction log (never answered with).",
        },
    },
}


def describe(name: str | None, version: str | None) -> str:
    """The service's description on the OpenAPI page (Markdown; nothing in it reads as HTML)."""
    served = f"**{name}** version **{version}**" if name else "no model yet (it loads in the background)"
    return (
        f"Predictions from {served}, the `champion` of the MLflow registry; the service follows the alias when it "
        "moves.\n\n"
        'Send raw feature values as in the training data: `{"records": [{"feature": value, ...}, ...]}`. Every '
        "record is checked against the schema learned from the training data; a bad one gets a 4xx whose `detail` "
        "names each field and what to send instead. Each answer carries the version that computed it (also in the "
        "`X-Model-Version` header).\n\n"
        "From Python: `bentoml.SyncHTTPClient(url).predict(records=[...])`. `GET /metadata` gives the schema, "
        "`/readyz` says whether a model is loaded, `/metrics` is for Prometheus."
    )


def openapi_document(document: dict[str, Any], name: str | None, version: str | None, example: Any) -> dict[str, Any]:
    """BentoML's OpenAPI document made about this service: titled with the served model and version, our error
    answers (not BentoML's generic ones) and a real example request."""
    document["info"] = {
        "title": f"neuroflow: {name} v{version}" if name else "neuroflow (no model loaded yet)",
        "version": version or "none",
        "description": describe(name, version),
    }
    predict = document.get("paths", {}).get("/predict", {}).get("post")
    if predict is not None:
        predict["summary"] = "Predict from a batch of records"
        predict["responses"] = {"200": predict["responses"].get(200) or predict["responses"].get("200")} | {
            status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for status, text in PREDICT_ERRORS.items()
        }
        if example is not None:
            content = predict["requestBody"]["content"]["application/json"]
            content["example"] = example
    metadata = document.get("paths", {}).get("/metadata", {}).get("post")
    if metadata is not None:
        metadata["summary"] = "The served model and its schema (also GET /metadata)"
    return document


def docs_page(title: str, spec_url: str = "./docs.json") -> str:
    """The Swagger page: BentoML's own Swagger UI files, our document, and nothing fetched from other hosts."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css">
<link rel="icon" type="image/png" href="./static_content/favicon-light-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="./static_content/swagger-ui-bundle.js" charset="utf-8"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{spec_url}", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout", tryItOutEnabled: true}});
</script>
</body>
</html>
"""
