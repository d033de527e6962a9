"""The request model generated from the schema: what it accepts, and how it names what it refuses."""

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from neuroflow.models.requests import RequestError, RequestParser, json_path
from neuroflow.models.schema import DataSchema, infer_schema
from tests.utils.factories import mixed_frame


@pytest.fixture(scope="module")
def schema() -> DataSchema:
    learned = infer_schema(mixed_frame(rows=100), "label", "binary")
    # `age` may not be missing; the other features may.
    return replace(learned, features=tuple(replace(c, nullable=c.name != "age") for c in learned.features))


def good_record() -> dict[str, Any]:
    return {"age": 40, "income": 51000.5, "city": "lyon", "member": True}


def body(*records: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"records": list(records), **extra}).encode()


def refused(parser: RequestParser, payload: bytes) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parser.parse(payload)
    return caught.value


def test_a_good_batch_comes_back_as_plain_records(schema: DataSchema) -> None:
    parser = RequestParser(schema, max_rows=10)
    records = parser.parse(body(good_record(), {**good_record(), "income": None, "city": None, "member": None}))
    assert records[0] == good_record()
    assert records[1]["income"] is None


@pytest.mark.parametrize(
    ("payload", "status", "field", "words"),
    [
        (b"", 400, "body", "empty"),
        (b"   ", 400, "body", "empty"),
        (b'{"records": [', 400, "body", "not valid JSON"),
        (b"[]", 422, "body", "object"),
        (body(), 422, "records", "empty"),
        (b"{}", 422, "records", "required"),
        (body(good_record(), extra=1), 422, "extra", "unknown key"),
        (body({k: v for k, v in good_record().items() if k != "city"}), 422, "records[0].city", "required"),
        (body({**good_record(), "colour": "red"}), 422, "records[0].colour", "not a feature"),
        (body({**good_record(), "age": "forty"}), 422, "records[0].age", "must be a number, not text"),
        (body({**good_record(), "age": "40"}), 422, "records[0].age", "must be a number"),
        (body({**good_record(), "age": None}), 422, "records[0].age", "may not be missing"),
        (body({**good_record(), "age": float("nan")}), 422, "records[0].age", "finite"),
        (body({**good_record(), "age": float("inf")}), 422, "records[0].age", "finite"),
        (body({**good_record(), "age": 7}).replace(b"7", b"1e400"), 422, "records[0].age", "finite"),
        (body({**good_record(), "city": "atlantis"}), 422, "records[0].city", "never seen in training"),
        (body({**good_record(), "member": "yes"}), 422, "records[0].member", "true or false"),
        (body(*[good_record()] * 11), 422, "records", "limit is 10"),
    ],
    ids=[
        "empty",
        "blank",
        "malformed",
        "not-an-object",
        "empty-batch",
        "no-records",
        "extra-top-level-key",
        "missing-feature",
        "unknown-feature",
        "text-for-number",
        "numeric-string",
        "null-not-allowed",
        "nan",
        "infinity",
        "1e400",
        "unseen-category",
        "not-a-boolean",
        "too-many-rows",
    ],
)
def test_each_bad_request_names_the_field_and_the_problem(
    schema: DataSchema, payload: bytes, status: int, field: str, words: str
) -> None:
    error = refused(RequestParser(schema, max_rows=10), payload)
    assert error.status == status
    problems = error.to_json()["detail"]
    assert problems[0]["field"] == field
    assert words in problems[0]["problem"]


def test_errors_never_echo_what_was_sent(schema: DataSchema) -> None:
    secret = "s3cret-value-that-must-not-come-back"
    error = refused(RequestParser(schema, max_rows=10), body({**good_record(), "age": secret, "city": secret}))
    assert secret not in json.dumps(error.to_json())
    assert {problem["field"] for problem in error.to_json()["detail"]} == {"records[0].age", "records[0].city"}


def test_a_record_sent_without_its_batch_is_one_sentence(schema: DataSchema) -> None:
    """{"age": 40, "city": "paris", ...} instead of {"records": [...]}: one problem for the body, not one per key."""
    error = refused(RequestParser(schema, max_rows=10), json.dumps(good_record()).encode())
    assert error.status == 422 and len(error.problems) == 1 and error.problems[0].field == "body"
    assert error.problems[0].problem.startswith(f"the body looks like one record ({len(good_record())} of its keys")
    assert 'send {"records": [' in error.problems[0].problem
    assert refused(RequestParser(schema, max_rows=10), b"{}").problems[0].field == "records"  # no record in it


def test_unknown_category_policy_lets_unseen_categories_through(schema: DataSchema) -> None:
    parser = RequestParser(schema, max_rows=10, unknown_categories="unknown")
    assert parser.parse(body({**good_record(), "city": "atlantis"}))[0]["city"] == "atlantis"


def test_the_json_schema_names_every_feature_with_its_type(schema: DataSchema) -> None:
    record = RequestParser(schema, max_rows=10).json_schema()["properties"]["records"]["items"]
    assert set(record["required"]) == {"age", "income", "city", "member"}
    assert record["additionalProperties"] is False
    assert record["properties"]["age"]["type"] == "number"
    assert {"type": "null"} in record["properties"]["income"]["anyOf"]
    city = next(option for option in record["properties"]["city"]["anyOf"] if option.get("type") == "string")
    assert city["enum"] == ["lyon", "nice", "paris"]
    assert "$ref" not in json.dumps(record)


def test_json_paths_read_like_the_request() -> None:
    assert json_path(("records", 3, "mean radius")) == "records[3].mean radius"
    assert json_path(()) == "body"


def test_integer_coded_categories_accept_their_codes_as_numbers_or_text() -> None:
    frame = mixed_frame(rows=120).drop(columns=["city"])
    frame["plan"] = [1, 2, 3] * 40
    schema = infer_schema(frame, "label", "binary", categorical=("plan",))
    plan = next(column for column in schema.features if column.name == "plan")
    assert plan.kind == "categorical" and plan.integer and plan.categories == ("1", "2", "3")
    record = {"age": 30.0, "income": 1.0, "member": True}
    parser = RequestParser(schema, max_rows=10)
    assert parser.parse(body({**record, "plan": 2}))[0]["plan"] == 2
    assert parser.parse(body({**record, "plan": "3"}))[0]["plan"] == "3"
    for bad in (7, 2.5, "two"):
        error = refused(parser, body({**record, "plan": bad}))
        assert error.status == 422 and error.to_json()["detail"][0]["field"] == "records[0].plan"
    lenient = RequestParser(schema, max_rows=10, unknown_categories="unknown")
    assert lenient.parse(body({**record, "plan": 9}))[0]["plan"] == 9


def test_columns_left_out_in_training_may_come_along_and_are_set_aside(schema: DataSchema) -> None:
    parser = RequestParser(replace(schema, ignored=("customer_id", "country")), max_rows=10)
    records = parser.parse(body({**good_record(), "customer_id": "C00042"}, {**good_record(), "country": None}))
    assert records == [good_record(), good_record()]
    error = refused(parser, body({**good_record(), "customer": "C00042"}))  # still only known columns
    assert error.status == 422 and error.to_json()["detail"][0]["field"] == "records[0].customer"
    record = parser.json_schema()["properties"]["records"]["items"]
    assert "customer_id" in record["properties"] and "customer_id" not in record["required"]
    assert "left out in training" in record["properties"]["customer_id"]["description"]


def test_keys_padded_with_spaces_are_read_as_the_features(schema: DataSchema) -> None:
    parser = RequestParser(schema, max_rows=10)
    padded = {" age": 40, "income ": 51000.5, " city ": "lyon", "member": True}
    assert parser.parse(body(padded)) == [good_record()]
    assert parser.parse_python([padded]) == [good_record()]
    error = refused(parser, body({**padded, " colour": "red"}))
    assert [problem.field for problem in error.problems] == ["records[0]. colour"]


def test_a_date_feature_takes_iso_strings_and_names_the_field_otherwise() -> None:
    frame = mixed_frame(rows=100)
    frame["since"] = [f"2024-{month:02d}-15" for month in np.resize(np.arange(1, 13), 100)]
    parser = RequestParser(infer_schema(frame, "label", "binary"), max_rows=10)
    for good in ("2024-03-01", "2024-03-01T08:30:00Z", "2024-03-01 08:30:00.25+01:00"):
        assert parser.parse(body({**good_record(), "since": good}))[0]["since"] == good
    for bad, problem in (
        ("01/03/2024", "must be an ISO 8601 date or time"),
        ("2024-02-30", "not a date that exists"),
        (20240301, "must be a valid string"),
    ):
        error = refused(parser, body({**good_record(), "since": bad}))
        assert error.status == 422 and error.problems[0].field == "records[0].since"
        assert problem in error.problems[0].problem, error.problems[0].problem
    since = parser.json_schema()["properties"]["records"]["items"]["properties"]["since"]
    assert since["type"] == "string" and "ISO 8601" in since["description"]
