"""The request model, generated from the training schema, and the errors a bad request gets.

No BentoML here: the service, the OpenAPI page and the tests all use these functions.
"""

import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NotRequired, Protocol

from pydantic import AfterValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ..core.errors import RequestError, RequestProblem
from .schema import DATE_PATTERN, ColumnSchema, DataSchema, category_label, parse_iso

RECORD_CONFIG = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
MAX_REPORTED_ERRORS = 20
MAX_LISTED_CATEGORIES = 12
MAX_ECHOED_KEY = 64  # an unknown key is named in the error, cut to this many characters
FLOAT32_LIMIT = 3.0e38  # just under float32's largest finite value
REQUEST_EXAMPLE_HINT = 'send {"records": [{"<feature>": <value>, ...}, ...]}'


def accepted_range(column: ColumnSchema, multiple: float) -> tuple[float, float]:
    """The numbers a numeric feature may take: the training range widened by `multiple` times its width (or its
    magnitude, for a narrow range), and never beyond what float32, the network's arithmetic, can hold."""
    low, high = column.minimum or 0.0, column.maximum or 0.0
    width = max(high - low, abs(low), abs(high), 1.0)
    return max(low - multiple * width, -FLOAT32_LIMIT), min(high + multiple * width, FLOAT32_LIMIT)


def column_type(column: ColumnSchema, unknown_categories: str, range_multiple: float) -> Any:
    if column.kind == "numeric":
        low, high = accepted_range(column, range_multiple)
        annotation: Any = Annotated[float, Field(ge=low, le=high, description=_describe_numeric(column))]
    elif column.kind == "boolean":
        annotation = StrictBool
    elif column.kind == "datetime":
        annotation = Annotated[
            StrictStr,
            Field(
                pattern=DATE_PATTERN,
                description="an ISO 8601 date or time, such as 2024-03-01 or 2024-03-01T08:30:00Z (no zone: UTC)",
            ),
            AfterValidator(_check_date),
        ]
    elif unknown_categories == "reject" and column.categories:
        codes = tuple(int(label) for label in column.categories) if column.integer else ()
        annotation = Literal[(*column.categories, *codes)]  # integer codes: 2 and "2" are the same category
    elif column.integer:
        annotation = StrictStr | StrictInt
    else:
        annotation = Annotated[
            StrictStr, Field(description="a category (unknown ones go to the column's unknown bucket)")
        ]
    return annotation | None if column.nullable else annotation


def _check_date(value: str) -> str:
    parse_iso(value)  # the pattern passed; this refuses a day that does not exist (2024-02-30)
    return value


def _describe_numeric(column: ColumnSchema) -> str:
    kind = "whole number" if column.integer else "number"
    if column.minimum is None or column.maximum is None:
        return kind
    return f"{kind}; seen in training between {column.minimum:g} and {column.maximum:g}"


def record_type(schema: DataSchema, unknown_categories: str = "reject", range_multiple: float = 100.0) -> Any:
    """A TypedDict with one required key per feature, typed from the schema; the columns training left out may come
    along (any value, set aside); other keys are refused."""
    fields: dict[str, Any] = {
        name: NotRequired[Annotated[Any, Field(description="left out in training (constant or ID-like): ignored")]]
        for name in schema.ignored
    }
    fields |= {column.name: column_type(column, unknown_categories, range_multiple) for column in schema.features}
    record = TypedDict("Record", fields)  # type: ignore[misc]
    record.__pydantic_config__ = RECORD_CONFIG  # type: ignore[attr-defined]
    return record


class RequestLimits(Protocol):
    """What a request parser is bounded by: the service's settings, without models knowing of them."""

    @property
    def max_rows(self) -> int: ...
    @property
    def unknown_categories(self) -> str: ...
    @property
    def range_multiple(self) -> float: ...


@dataclass(frozen=True)
class RequestParser:
    """Parses and validates a `/predict` body for one schema; built once per loaded model."""

    schema: DataSchema
    max_rows: int
    unknown_categories: str = "reject"
    range_multiple: float = 100.0
    adapter: TypeAdapter = field(init=False, repr=False)
    known_keys: frozenset[str] = field(init=False, repr=False)  # the features and the ignored columns

    def __post_init__(self) -> None:
        object.__setattr__(self, "known_keys", frozenset((*self.schema.feature_names, *self.schema.ignored)))
        record = record_type(self.schema, self.unknown_categories, self.range_multiple)
        request = TypedDict(  # type: ignore[name-match]  # noqa: UP013 (the field type is built at run time)
            "PredictRequest",
            {"records": Annotated[list[record], Field(min_length=1, max_length=self.max_rows)]},  # type: ignore[valid-type]
        )
        request.__pydantic_config__ = RECORD_CONFIG  # type: ignore[attr-defined]
        object.__setattr__(self, "adapter", TypeAdapter(request))

    @classmethod
    def for_limits(cls, schema: DataSchema, limits: RequestLimits) -> "RequestParser":
        """The parser the service uses for `schema` under its limits (`ServiceSettings` is one)."""
        return cls(schema, limits.max_rows, limits.unknown_categories, limits.range_multiple)

    def parse(self, body: bytes) -> list[dict[str, Any]]:
        """The validated records, or a RequestError naming each bad field (never echoing the values sent)."""
        if not body.strip():
            raise RequestError(
                400, "empty body", [RequestProblem("body", f"the request body is empty; {REQUEST_EXAMPLE_HINT}")]
            )
        try:
            records: list[dict[str, Any]] = self.adapter.validate_json(body)["records"]
        except ValidationError as error:
            if not any(item["type"] in ("extra_forbidden", "missing") for item in error.errors()):
                raise self._describe(error) from None
            records = self._with_stripped_keys(body, error)
        if self.schema.ignored:
            records = [{k: v for k, v in record.items() if k not in self.schema.ignored} for record in records]
        return records

    def _trim_keys(self, record: dict[str, Any]) -> dict[str, Any]:
        known = self.known_keys
        return {
            (key.strip() if isinstance(key, str) and key not in known and key.strip() in known else key): value
            for key, value in record.items()
        }

    def _with_stripped_keys(self, body: bytes, error: ValidationError) -> list[dict[str, Any]]:
        """A body whose keys differ from the features only by surrounding spaces (" sex" for "sex", as a table's
        header may spell them) is read as if they were trimmed; otherwise the first error stands."""
        try:
            payload = json.loads(body)
            records = payload["records"]
            trimmed = [self._trim_keys(record) for record in records]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self._describe(error) from None
        if trimmed == records:
            raise self._describe(error) from None
        return self.parse_python(trimmed)

    def parse_python(self, records: Any) -> list[dict[str, Any]]:
        """The same checks on records given as Python objects (a call from Python rather than over HTTP)."""
        if isinstance(records, list) and all(isinstance(record, dict) for record in records):
            records = [self._trim_keys(record) for record in records]
        try:
            validated: list[dict[str, Any]] = self.adapter.validate_python({"records": records})["records"]
        except ValidationError as error:
            raise self._describe(error) from None
        if self.schema.ignored:
            validated = [{k: v for k, v in record.items() if k not in self.schema.ignored} for record in validated]
        return validated

    def _describe(self, error: ValidationError) -> RequestError:
        problems: list[RequestProblem] = []
        status, title = 422, "invalid request"
        items = error.errors(include_url=False)  # the inputs are looked at, never echoed
        if (shape := self._wrong_shape(items)) is not None:
            return RequestError(422, title, [RequestProblem("body", shape)])
        for item in items[:MAX_REPORTED_ERRORS]:
            if item["type"] == "json_invalid":
                status, title = 400, "malformed JSON"
                problems.append(RequestProblem("body", f"not valid JSON: {item['ctx']['error']}"))
                continue
            problems.append(RequestProblem(json_path(item["loc"]), self.problem(item)))
        return RequestError(status, title, problems)

    def _wrong_shape(self, items: list[Any]) -> str | None:
        """One sentence for a body that is not a batch (a single record sent as it is), instead of a problem for
        each of its keys."""
        if not any(item["type"] == "missing" and item["loc"] == ("records",) for item in items):
            return None
        keys = [item["loc"][0] for item in items if item["type"] == "extra_forbidden" and len(item["loc"]) == 1]
        features = {column.name for column in self.schema.features}
        named = sum(1 for key in keys if key in features)
        if not named:
            return None
        return f"the body looks like one record ({named} of its keys are features), not a batch: {REQUEST_EXAMPLE_HINT}"

    def problem(self, item: Any) -> str:
        kind, location = item["type"], item["loc"]
        if kind == "missing":
            if location == ("records",):
                return f"required; {REQUEST_EXAMPLE_HINT}"
            return "required: every feature the model was trained on must be present (null where it may be missing)"
        if kind == "extra_forbidden" and len(location) == 1:
            return f"unknown key; {REQUEST_EXAMPLE_HINT}"
        if kind == "extra_forbidden":
            return "not a feature of this model; see GET /metadata for the schema"
        if kind == "literal_error":
            column = self._column(location)
            known = ", ".join(column.categories[:MAX_LISTED_CATEGORIES]) if column and column.categories else ""
            more = " ..." if column and column.categories and len(column.categories) > MAX_LISTED_CATEGORIES else ""
            return f"a category never seen in training; expected one of: {known}{more}"
        if kind in ("greater_than_equal", "less_than_equal"):
            column = self._column(location)
            seen = f" (seen in training: {column.minimum:g} to {column.maximum:g})" if column else ""
            bound = item["ctx"].get("ge", item["ctx"].get("le"))
            side = "at least" if kind == "greater_than_equal" else "at most"
            return f"must be {side} {bound:g}: too far outside the range the model was trained on{seen}"
        if kind == "finite_number":
            return "must be a finite number (NaN, Infinity and out-of-range numbers are refused)"
        if kind == "too_short" and location == ("records",):
            return "the batch is empty; send at least one record"
        if kind == "too_long" and location == ("records",):
            return f"too many records in one request; the limit is {self.max_rows}"
        if kind == "float_type":
            column = self._column(location)
            if column is not None and not column.nullable:
                if item.get("input") is not None:
                    return "must be a number, not text or another kind of value"
                return "must be a number (this feature may not be missing)"
            return "must be a number or null"
        if kind == "bool_type":
            return "must be true or false"
        if kind == "string_pattern_mismatch" or (kind == "value_error" and "ISO 8601" in item["msg"]):
            return "must be an ISO 8601 date or time, such as 2024-03-01 or 2024-03-01T08:30:00Z"
        if kind == "value_error":
            return "not a date that exists (check the day and month)"
        if kind in ("string_type", "dict_type", "list_type", "model_type", "typed_dict_type"):
            return item["msg"].replace("Input should be", "must be")
        return item["msg"]

    def _column(self, location: tuple[Any, ...]) -> ColumnSchema | None:
        names = [part for part in location if isinstance(part, str)]
        for column in self.schema.features:
            if column.name in names:
                return column
        return None

    def json_schema(self) -> dict[str, Any]:
        """The request body's JSON schema with definitions inlined (for the OpenAPI page)."""
        schema = self.adapter.json_schema()
        definitions = schema.pop("$defs", {})
        return inline(schema, definitions)


def json_path(location: tuple[Any, ...]) -> str:
    """`("records", 0, "mean radius")` → `records[0].mean radius`: the field the client has to fix."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = str(part) if len(str(part)) <= MAX_ECHOED_KEY else f"{str(part)[:MAX_ECHOED_KEY]}…"
            path += f".{name}" if path else name
    return path or "body"


def inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(value, definitions) for value in node]
    return node


def dumps(payload: Any) -> bytes:
    """Compact JSON for responses."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def label_problem(schema: DataSchema, label: Any) -> str | None:
    """What is wrong with a true label (or value) sent back for a served record, else None: the one check the
    service's /feedback and `neuroflow feedback` share. Classes are named in the target's own type."""
    if schema.task == "regression":
        if isinstance(label, bool) or not isinstance(label, int | float) or not math.isfinite(label):
            return "the true value, a finite number"
        return None
    classes = set(schema.classes or ())
    if label is None or isinstance(label, dict | list) or category_label(label) not in classes:
        return f"one of the classes {json.dumps(list(schema.class_values or ()))}"
    return None
