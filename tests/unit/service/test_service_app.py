"""The HTTP routes through the ASGI app (no server process): answers, errors, auth, and the model swap."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from neuroflow.core.errors import ModelNotFoundError
from neuroflow.core.settings import Settings, load_settings
from neuroflow.core.store import ModelInfo
from neuroflow.models.inference import Predictor
from neuroflow.models.loading import LoadedVersion
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.bookkeeping.notify import request_reload
from neuroflow.pipelines.steps.data import Dataset, split_data
from neuroflow.pipelines.steps.training import train_model
from neuroflow.service.app import VERSION_HEADER
from neuroflow.service.loading import LoadedModel, ready
from neuroflow.service.service import build_service
from tests.utils.factories import TINY_NETWORK, mixed_frame, train_tiny

TOKEN = "a-test-token-0123456789"
LOCAL = ("127.0.0.1", 50000)  # what a client on this machine looks like to the service


class MemorySource:
    """Versions held in memory; `champion` says which one the alias points at."""

    follows = True
    description = "memory"

    def __init__(
        self,
        predictors: dict[str, Predictor],
        settings: Settings,
        champion: str | None = None,
        example: list[dict[str, Any]] | None = None,
    ) -> None:
        self.predictors = predictors
        self.example = example
        self.settings = settings
        self.champion = champion  # None: no champion until a test refreshes
        self.shadow: str | None = None  # what service.shadow resolves to
        self.cards: dict[str, str] = {}  # version → its model card, as loaded

    def shadow_version(self, mode: str, champion: str | None) -> str | None:
        return self.shadow

    def model_card(self, version: str) -> str:
        return self.cards.get(version, "")

    def current_version(self) -> str:
        if self.champion is None:
            raise ModelNotFoundError("no champion yet")
        return self.champion

    def load(self, version: str) -> LoadedModel:
        info = ModelInfo("m", version, "champion", None, "memory", card=self.cards.get(version, ""))
        return ready(LoadedVersion(info, self.predictors[version], self.example), self.settings.service)


def served_app(settings: Settings, source: MemorySource) -> tuple[Any, Any]:
    """The BentoML service's ASGI app (typed API, FastAPI routes, guard) and its model holder, as BentoML's testing
    guide drives a service: `Service.to_asgi()` behind a Starlette TestClient."""
    quiet = settings.service.model_copy(update={"startup_attempts": 1, "poll_seconds": 0})  # the tests swap
    service, holder = build_service(settings.model_copy(update={"service": quiet}), source, metrics=False)
    return service.to_asgi(), holder


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    frame = mixed_frame(rows=300)
    tiny = {str(seed): train_tiny(frame, "label", "binary", seed=seed) for seed in (1, 2)}
    split = tiny["1"].split
    versions = {version: trained.predictor for version, trained in tiny.items()}
    records = [
        {key: (None if isinstance(value, float) and np.isnan(value) else value) for key, value in row.items()}
        for row in split.test_features.to_dict(orient="records")
    ]
    return {"versions": versions, "records": records}


@pytest.fixture
def served(trained: dict[str, Any]) -> Iterator[tuple[TestClient, MemorySource, Any]]:
    settings = load_settings(overrides={"service": {"max_rows": 50, "max_body_bytes": 4096}})
    source = MemorySource(trained["versions"], settings, example=trained["records"][:3])
    app, holder = served_app(settings, source)
    with TestClient(app, client=LOCAL) as client:
        yield client, source, holder


def refresh(client: TestClient, holder: Any) -> Any:
    assert client.portal is not None
    holder.source.champion = holder.source.champion or "1"
    return client.portal.call(holder.refresh)


def test_predictions_come_with_the_version_that_computed_them(served, trained) -> None:
    client, _, holder = served
    assert client.post("/predict", json={"records": trained["records"][:2]}).status_code == 503
    refresh(client, holder)
    response = client.post("/predict", json={"records": trained["records"][:3]})
    assert response.status_code == 200
    answer = response.json()
    assert answer["model_version"] == response.headers[VERSION_HEADER] == "1"
    expected = trained["versions"]["1"].predict_records(trained["records"][:3])
    assert [row["prediction"] for row in answer["predictions"]] == list(expected.labels)
    probabilities = np.array(
        [[row["probabilities"]["no"], row["probabilities"]["yes"]] for row in answer["predictions"]]
    )
    assert np.max(np.abs(probabilities - expected.probabilities)) < 1e-12


def test_a_new_champion_is_swapped_in_and_reported(served, trained) -> None:
    client, source, holder = served
    refresh(client, holder)
    source.champion = "2"
    outcome = refresh(client, holder)
    assert (outcome.previous, outcome.current, outcome.changed) == ("1", "2", True)
    response = client.post("/predict", json={"records": trained["records"][:1]})
    assert response.json()["model_version"] == "2"
    expected = trained["versions"]["2"].predict_records(trained["records"][:1]).probabilities[0][1]
    assert response.json()["predictions"][0]["probabilities"]["yes"] == pytest.approx(expected, abs=1e-12)
    assert client.post("/reload", json={}).json() == {"previous_version": "2", "model_version": "2", "changed": False}
    assert client.get("/docs.json").json()["info"]["version"] == "2"  # the documentation follows the swap


def test_bad_requests_get_4xx_and_the_next_good_one_succeeds(served, trained) -> None:
    client, _, holder = served
    refresh(client, holder)
    good = {"records": trained["records"][:1]}
    bad = [
        (b"{oops", 400),
        (b"", 400),
        (json.dumps({"records": []}).encode(), 422),
        (json.dumps({"records": [{**trained["records"][0], "age": "old"}]}).encode(), 422),
        (json.dumps({"records": trained["records"][:1] * 51}).encode(), 422),
        (b"x" * 5000, 413),
    ]
    for payload, status in bad:
        response = client.post("/predict", content=payload, headers={"content-type": "application/json"})
        assert response.status_code == status, response.text
        assert response.json()["detail"][0]["field"]
        assert client.post("/predict", json=good).status_code == 200


def test_metadata_describes_the_served_model(served) -> None:
    client, _, holder = served
    refresh(client, holder)
    metadata = client.get("/metadata").json()
    assert metadata["model_version"] == "1" and metadata["task"] == "binary"
    assert [column["name"] for column in metadata["schema"]["features"]] == ["age", "income", "city", "member"]
    served_model = holder.current.predictor
    assert metadata["decision_threshold"] == {
        "positive_class": served_model.schema.classes[-1],
        "threshold": 0.5,
        "chosen_by": "default",
    }
    assert metadata["calibration_temperature"] == pytest.approx(served_model.forward.temperature)
    assert metadata["calibration_temperature"] != 1.0  # calibrated on the validation rows, shipped in the model


def test_the_model_card_is_served_as_the_registry_holds_it_now(trained) -> None:
    settings = load_settings()
    source = MemorySource(trained["versions"], settings, champion="1")
    source.cards["1"] = "# Model card: m v1\n\nloaded with the model\n"
    app, holder = served_app(settings, source)
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        answer = client.get("/model-card")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/markdown")
        assert answer.text.startswith("# Model card: m v1") and answer.headers["x-model-version"] == "1"
        source.model_card = lambda version: f"# Model card: m v{version}\n\nwritten after the gate\n"  # type: ignore[method-assign]
        assert "written after the gate" in client.get("/model-card").text

        def registry_down(version: str) -> str:
            raise ConnectionError("registry down")

        source.model_card = registry_down  # type: ignore[method-assign]
        assert "loaded with the model" in client.get("/model-card").text  # the card read at load time stands


def test_bearer_token_guards_prediction_and_reload(trained) -> None:
    settings = load_settings(overrides={"service": {"auth_token": TOKEN}})
    app, holder = served_app(settings, MemorySource(trained["versions"], settings))
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        good = {"records": trained["records"][:1]}
        assert client.post("/predict", json=good).status_code == 401
        assert (
            client.post("/predict", json=good, headers={"Authorization": "Bearer wrong-token-000000"}).status_code
            == 401
        )
        assert client.post("/reload", json={}).status_code == 401
        assert client.post("/predict", json=good, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.post("/reload", json={}, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_token_only_this_machine_may_reload(trained) -> None:
    settings = load_settings()
    app, _ = served_app(settings, MemorySource(trained["versions"], settings, champion="1"))
    with TestClient(app, client=("192.0.2.7", 50000)) as remote:
        refused = remote.post("/reload", json={})
        assert refused.status_code == 403 and refused.json()["detail"][0]["field"] == "Authorization"
    with TestClient(app, client=LOCAL) as local:
        assert local.post("/reload", json={}).status_code == 200


def test_a_short_auth_token_is_refused() -> None:
    from neuroflow.core.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 16"):
        load_settings(overrides={"service": {"auth_token": "short"}})


def test_training_asks_a_running_service_to_reload() -> None:
    calls: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append((self.path, self.headers.get("Authorization")))
            payload = json.dumps({"previous_version": "1", "model_version": "2", "changed": True}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings = load_settings(overrides={"service": {"url": url, "auth_token": TOKEN}})
        assert request_reload(settings.service) == "2"
        assert calls == [("/reload", f"Bearer {TOKEN}")]
    finally:
        server.shutdown()
    unreachable = load_settings(overrides={"service": {"url": url}})
    assert request_reload(unreachable.service, timeout=2) is None  # logged, never raised


def test_only_json_bodies_are_served(served, trained) -> None:
    """A web page can send text/plain, form and multipart bodies cross-origin without asking (CORS "simple"
    requests): before, those were served, so any page open on this machine could POST /reload and /predict."""
    client, _, holder = served
    refresh(client, holder)
    body = json.dumps({"records": trained["records"][:1]})
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"content-type": media} if media else {}
        for path in ("/predict", "/reload"):
            response = client.post(path, content=body, headers=headers)
            assert response.status_code == 415, (path, media, response.text)
            assert response.json()["detail"][0]["field"] == "Content-Type"
    charset = client.post("/predict", content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert charset.status_code == 200


def test_the_body_limit_holds_whatever_the_headers_say(served, trained) -> None:
    client, _, holder = served
    refresh(client, holder)
    json_type = {"content-type": "application/json"}
    both = client.post("/predict", content=b"{}", headers=json_type | {"transfer-encoding": "chunked"})
    assert both.status_code == 400 and both.json()["detail"][0]["field"] == "Transfer-Encoding"
    declared = client.post("/predict", content=b"x" * 5000, headers=json_type)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"records": ['
        for _ in range(1000):
            yield b" " * 1000

    streamed = client.post("/predict", content=chunks(), headers=json_type)  # chunked: no length declared
    assert streamed.status_code == 413


def test_numbers_the_network_cannot_represent_get_422_naming_the_field(served, trained) -> None:
    """Before: 1e100 overflowed float32 to inf, the probabilities became NaN and the JSON encoder failed (500)."""
    client, _, holder = served
    refresh(client, holder)
    for value in (1e100, -2.67e160, 3.5e38):
        record = {**trained["records"][0], "income": value}
        response = client.post("/predict", json={"records": [record]})
        assert response.status_code == 422, response.text
        problem = response.json()["detail"][0]
        assert problem["field"] == "records[0].income" and "range the model was trained on" in problem["problem"]
    record = {**trained["records"][0], "income": trained["records"][0]["income"] * 3}
    assert client.post("/predict", json={"records": [record]}).status_code == 200  # outside, but not absurdly


def test_unknown_keys_are_named_but_not_echoed_at_any_length(served, trained) -> None:
    client, _, holder = served
    refresh(client, holder)
    record = {**trained["records"][0], "k" * 2_000: 1}
    response = client.post("/predict", json={"records": [record]})
    assert response.status_code == 422
    field = response.json()["detail"][0]["field"]
    assert field.startswith("records[0].kkkk") and len(field) < 100
    many = {**trained["records"][0], **{f"x{index}": 1 for index in range(300)}}
    problems = client.post("/predict", json={"records": [many]}).json()["detail"]
    assert 1 <= len(problems) <= 20


def test_with_a_token_everything_but_the_probes_needs_it(trained) -> None:
    settings = load_settings(overrides={"service": {"auth_token": TOKEN}})
    app, holder = served_app(settings, MemorySource(trained["versions"], settings))
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        assert client.get("/metadata").status_code == 401
        assert client.get("/metadata", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_a_proxied_request_is_not_local_whatever_its_peer(trained) -> None:
    """Behind a reverse proxy on this machine every request's peer is 127.0.0.1; the proxy's headers give it away."""
    settings = load_settings()
    app, _ = served_app(settings, MemorySource(trained["versions"], settings, champion="1"))
    with TestClient(app, client=LOCAL) as local:
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            refused = local.post("/reload", json={}, headers={header: "198.51.100.9"})
            assert refused.status_code == 403, header


@pytest.mark.parametrize(
    ("labels", "expected_type", "json_type"),
    [((0, 1), int, "integer"), ((False, True), bool, "boolean"), (("no", "yes"), str, "string")],
)
def test_labels_keep_the_type_of_the_training_target(
    labels: tuple[Any, Any], expected_type: type, json_type: str
) -> None:
    """A model trained on a 0/1 column answers 0 and 1 (not "0" and "1"), so `(prediction == y).mean()` works."""
    frame = mixed_frame(rows=200)
    frame["label"] = np.where(frame["label"] == "yes", labels[1], labels[0])
    frame["label"] = frame["label"].astype({int: "int64", bool: "bool", str: "object"}[expected_type])
    schema = infer_schema(frame, "label", "binary")
    split = split_data(Dataset("m", "test", frame, "label", "binary"), 0.2, 0.2, seed=0)
    predictor = train_model(schema, split, TINY_NETWORK, seed=0).predictor
    settings = load_settings()
    app, holder = served_app(settings, MemorySource({"1": predictor}, settings, champion="1"))
    rows = split.test_features.head(20)
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in rows.to_dict(orient="records")]
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        answers = [
            row["prediction"] for row in client.post("/predict", json={"records": records}).json()["predictions"]
        ]
        document = client.get("/docs.json").json()
    assert all(type(answer) is expected_type for answer in answers), answers
    assert set(answers) <= set(labels)
    scored = predictor.predict(rows).to_frame(schema.classes)["prediction"]
    assert list(scored) == answers and all(type(value) is expected_type for value in scored.tolist())
    response = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert response["properties"]["predictions"]["items"]["properties"]["prediction"]["type"] == json_type


def test_the_typed_api_documents_the_served_model(served, trained) -> None:
    """/docs is Swagger titled with the model and version; /docs.json carries a real example; BentoML's /schema.json
    lists both typed routes, which is what BentoML's clients read."""
    client, _, holder = served
    assert client.get("/docs.json").json()["info"]["title"] == "neuroflow (no model loaded yet)"
    refresh(client, holder)
    page = client.get("/docs")
    assert (
        page.status_code == 200
        and "<title>neuroflow: m v1</title>" in page.text
        and "googletagmanager" not in page.text
    )
    assert client.get("/", follow_redirects=False).headers["location"] == "/docs"
    document = client.get("/docs.json").json()
    assert document["info"]["title"] == "neuroflow: m v1" and document["info"]["version"] == "1"
    assert "<feature>" not in document["info"]["description"]
    assert client.get("/openapi.json").json()["info"] == document["info"]
    predict = document["paths"]["/predict"]["post"]
    assert set(predict["responses"]) >= {"200", "400", "413", "415", "422", "503"}
    example = predict["requestBody"]["content"]["application/json"]["example"]
    assert example == {"records": [trained["records"][0]]}
    real = client.post("/predict", json=example)
    assert real.status_code == 200 and real.json()["predictions"][0]["prediction"] in ("no", "yes")
    routes = {route["name"]: route for route in client.get("/schema.json").json()["routes"]}
    assert set(routes) == {"predict", "metadata"}
    assert set(routes["predict"]["input"]["properties"]["records"]["items"]["properties"]) == {
        "age",
        "income",
        "city",
        "member",
    }
    assert client.post("/metadata", json={}).json()["model_version"] == "1"


def test_direct_predict_and_bentoml_dispatch_answer_alike(trained) -> None:
    """`service.direct_predict` only changes who calls the typed API's two steps: good and bad requests get the same
    status, body and version header either way."""
    bodies = [
        json.dumps({"records": trained["records"][:3]}).encode(),
        b"{oops",
        b"",
        json.dumps({"records": []}).encode(),
        json.dumps({"records": [{**trained["records"][0], "age": "old"}]}).encode(),
        json.dumps({"records": [{**trained["records"][0], "colour": "red"}]}).encode(),
        json.dumps({"records": trained["records"][:1] * 51}).encode(),
    ]
    answers = {}
    for direct in (True, False):
        settings = load_settings(
            overrides={"service": {"max_rows": 50, "max_body_bytes": 4096, "direct_predict": direct}}
        )
        app, holder = served_app(settings, MemorySource(trained["versions"], settings, champion="1"))
        with TestClient(app, client=LOCAL) as client:
            refresh(client, holder)
            answers[direct] = [
                (r.status_code, r.json(), r.headers.get(VERSION_HEADER))
                for r in (
                    client.post("/predict", content=body, headers={"content-type": "application/json"})
                    for body in bodies
                )
            ]
    ids = [item.pop("request_id") for direct in (True, False) for item in answers[direct][0][1]["predictions"]]
    assert len(set(ids)) == 6 and ids[0].endswith("-0") and ids[1] == ids[0][:-1] + "1"  # one id per record
    assert answers[True] == answers[False]
    assert [status for status, _, _ in answers[True]] == [200, 400, 400, 422, 422, 422, 422]


def test_every_entrance_to_predict_answers_alike(trained) -> None:
    """One door (`app.predict_answer`): over HTTP and in a call from Python, the same records get the same
    predictions, and the same refusals the same status and problems."""
    import asyncio

    from neuroflow.core.errors import RequestError

    batches = [
        trained["records"][:3],
        [],
        [{**trained["records"][0], "age": "old"}],
        [{**trained["records"][0], "colour": "red"}],
        trained["records"][:1] * 51,
    ]
    settings = load_settings(overrides={"service": {"max_rows": 50, "max_body_bytes": 65536}})
    app, holder = served_app(settings, MemorySource(trained["versions"], settings, champion="1"))
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        over_http = [(r.status_code, r.json()) for r in (client.post("/predict", json={"records": b}) for b in batches)]
    service, called_holder = build_service(settings, MemorySource(trained["versions"], settings, champion="1"), False)

    async def from_python() -> list[tuple[int, Any]]:
        await called_holder.refresh()
        instance = service()
        answers: list[tuple[int, Any]] = []
        for batch in batches:
            try:
                answers.append((200, await instance.predict(records=batch)))
            except RequestError as error:
                answers.append((error.status, error.to_json()))
        return answers

    in_python = asyncio.run(from_python())
    for body in (over_http[0][1], in_python[0][1]):
        for item in body["predictions"]:
            item.pop("request_id")
    assert in_python == over_http
    assert [status for status, _ in over_http] == [200, 422, 422, 422, 422]


def test_the_api_method_answers_a_call_from_python(trained) -> None:
    """BentoML's testing guide, first depth: the service class with its model, no HTTP. The method applies the same
    checks and gives the same answer as the route."""
    import asyncio

    from neuroflow.models.requests import RequestError

    settings = load_settings()
    service, holder = build_service(settings, MemorySource(trained["versions"], settings, champion="1"), metrics=False)

    async def call() -> tuple[Any, RequestError]:
        await holder.refresh()
        instance = service()
        answer = await instance.predict(records=trained["records"][:2])
        with pytest.raises(RequestError) as refused:
            await instance.predict(records=[{**trained["records"][0], "age": "old"}])
        return answer, refused.value

    answer, refused = asyncio.run(call())
    expected = trained["versions"]["1"].predict_records(trained["records"][:2])
    assert answer["model_version"] == "1" and [row["prediction"] for row in answer["predictions"]] == list(
        expected.values
    )
    assert refused.status == 422 and refused.problems[0].field == "records[0].age"


class FailingPredictor:
    """A shadow version that cannot score anything."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema

    def predict_records(self, records: Any) -> Any:
        raise RuntimeError("the shadow broke")


def logged_app(trained: dict[str, Any], folder: Any, **service: Any) -> tuple[Any, MemorySource, Any]:
    settings = load_settings(overrides={"service": {"prediction_log": str(folder), **service}})
    source = MemorySource(trained["versions"], settings, champion="1")
    app, holder = served_app(settings, source)
    return app, source, holder


def test_every_answer_is_logged_and_feedback_joins_it_by_request_id(trained, tmp_path) -> None:
    from neuroflow.core.predictionlog import ParquetStore

    app, _, holder = logged_app(trained, tmp_path)
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        answer = client.post("/predict", json={"records": trained["records"][:3]}).json()
        ids = [item["request_id"] for item in answer["predictions"]]
        label = answer["predictions"][0]["prediction"]
        good = client.post("/feedback", json={"feedback": [{"request_id": ids[0], "label": label}]})
        assert good.status_code == 200 and good.json() == {"recorded": 1, "unknown_ids": []}
        mixed = client.post(
            "/feedback",
            json={"feedback": [{"request_id": ids[1], "label": "no"}, {"request_id": "nope-0", "label": "no"}]},
        )
        assert mixed.status_code == 200 and mixed.json() == {"recorded": 1, "unknown_ids": ["nope-0"]}
        unknown = client.post("/feedback", json={"feedback": [{"request_id": "made-up-0", "label": "yes"}]})
        assert unknown.status_code == 404
        assert unknown.json()["detail"][0]["field"] == "feedback[0].request_id"
        wrong = client.post("/feedback", json={"feedback": [{"request_id": ids[2], "label": "maybe"}]})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "feedback[0].label"
        assert client.post("/feedback", json={"records": []}).status_code == 422
    store = ParquetStore(tmp_path)
    frame = store.read("m")
    assert list(frame["request_id"]) == ids and set(frame["model_version"]) == {"1"}
    assert json.loads(frame["features"].iloc[0])["city"] == trained["records"][0]["city"]
    assert sorted(store.read_feedback()["request_id"]) == sorted(ids[:2])  # nothing invented for unknown ids


def test_feedback_blames_the_prediction_log_only_when_the_store_fails(trained, tmp_path, monkeypatch) -> None:
    """A store that fails is a 503 naming the log; a bug in reading it is a 500, never "prediction log unavailable"."""
    from neuroflow.core.predictionlog import ParquetStore

    app, _, holder = logged_app(trained, tmp_path)
    with TestClient(app, client=LOCAL, raise_server_exceptions=False) as client:
        refresh(client, holder)
        answer = client.post("/predict", json={"records": trained["records"][:1]}).json()
        sent = {"feedback": [{"request_id": answer["predictions"][0]["request_id"], "label": "no"}]}

        def disk_gone(self: Any, ids: Any) -> Any:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(ParquetStore, "known_ids", disk_gone)
        down = client.post("/feedback", json=sent)
        assert down.status_code == 503 and "prediction log unavailable" in down.text

        def bug(self: Any, ids: Any) -> Any:
            raise ZeroDivisionError("a bug in known_ids")

        monkeypatch.setattr(ParquetStore, "known_ids", bug)
        broken = client.post("/feedback", json=sent)
        assert broken.status_code == 500 and "prediction log unavailable" not in broken.text


def test_feedback_refusals_name_the_classes_in_the_targets_type(trained, tmp_path) -> None:
    app, _, holder = logged_app(trained, tmp_path)
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        assert client.get("/metadata").json()["shadow"] is None
        answer = client.post("/predict", json={"records": trained["records"][:1]}).json()
        wrong = client.post(
            "/feedback", json={"feedback": [{"request_id": answer["predictions"][0]["request_id"], "label": "maybe"}]}
        )
    expected = json.dumps(list(holder.current.schema.class_values))
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["problem"] == f"one of the classes {expected}"


def test_integer_classes_are_listed_as_integers_and_regression_labels_must_be_finite() -> None:
    from neuroflow.core.errors import RequestError
    from neuroflow.service.app import read_feedback
    from tests.utils.factories import classification_frame, regression_frame, train_tiny

    coded = train_tiny(classification_frame(rows=120), "target", "binary")
    model = SimpleNamespace(schema=coded.schema)
    with pytest.raises(RequestError) as refused:
        read_feedback(b'{"feedback": [{"request_id": "a-0", "label": 7}]}', model)  # type: ignore[arg-type]
    assert refused.value.problems[0].problem == "one of the classes [0, 1]"  # not ['0', '1']
    priced = SimpleNamespace(schema=train_tiny(regression_frame(rows=120), "target", "regression").schema)
    for label in (b"NaN", b"Infinity", b"-Infinity"):
        with pytest.raises(RequestError) as refused:
            read_feedback(b'{"feedback": [{"request_id": "a-0", "label": ' + label + b"}]}", priced)  # type: ignore[arg-type]
        assert refused.value.problems[0].problem == "the true value, a finite number"
    assert read_feedback(b'{"feedback": [{"request_id": "a-0", "label": 3.5}]}', priced) == (["a-0"], [3.5])  # type: ignore[arg-type]


def test_with_the_log_off_answers_still_carry_ids_and_feedback_says_why(trained) -> None:
    app, _, holder = logged_app(trained, "off")
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        answer = client.post("/predict", json={"records": trained["records"][:1]}).json()
        assert answer["predictions"][0]["request_id"].endswith("-0")
        refused = client.post("/feedback", json={"feedback": [{"request_id": "x-0", "label": "yes"}]})
        assert refused.status_code == 409 and "prediction_log" in refused.text


def test_the_shadow_is_logged_beside_the_champion_and_never_answers(trained, tmp_path) -> None:
    from neuroflow.core.predictionlog import ParquetStore

    app, source, holder = logged_app(trained, tmp_path, shadow="latest")
    source.shadow = "2"
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        assert holder.shadow is not None and holder.shadow.version == "2"
        assert client.get("/metadata").json()["shadow"] == {"model_version": "2", "mode": "latest"}
        response = client.post("/predict", json={"records": trained["records"][:4]})
        assert response.status_code == 200 and response.json()["model_version"] == "1"
        expected = trained["versions"]["1"].predict_records(trained["records"][:4])
        assert [row["prediction"] for row in response.json()["predictions"]] == list(expected.labels)
    frame = ParquetStore(tmp_path).read("m")  # the shadow's queue and the log were emptied at shutdown
    shadow = frame[frame["role"] == "shadow"]
    assert len(shadow) == 4 and set(shadow["model_version"]) == {"2"}
    assert set(shadow["request_id"]) == set(frame.loc[frame["role"] == "champion", "request_id"])


def test_a_failing_shadow_never_fails_a_request(trained, tmp_path) -> None:
    # Version 2 is the failing one in the source itself: the service's own start-up refresh, which may finish after
    # the test's, then loads the same failing shadow instead of replacing one set by hand.
    failing = trained["versions"] | {"2": FailingPredictor(trained["versions"]["1"].schema)}
    app, source, holder = logged_app(trained | {"versions": failing}, tmp_path, shadow="latest")
    source.shadow = "2"
    with TestClient(app, client=LOCAL) as client:
        refresh(client, holder)
        for _ in range(5):
            assert client.post("/predict", json={"records": trained["records"][:2]}).status_code == 200
        deadline = time.monotonic() + 10
        while holder.recorder.shadow_failures < 10 and time.monotonic() < deadline:
            holder.recorder.score_shadow()  # the background thread may hold the last request a moment longer
            time.sleep(0.05)
        assert holder.recorder.shadow_failures == 10
