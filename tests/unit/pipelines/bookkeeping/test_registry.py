import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from neuroflow.core.errors import ModelNotFoundError, PromotionError
from neuroflow.pipelines.bookkeeping.registry import (
    PromotionDecision,
    alias_history,
    alias_lock,
    apply_decision,
    current_champion,
    decide_promotion,
    lock_name,
    promote_if_better,
    promote_version,
    register_version,
    rollback,
    rollback_target,
)
from neuroflow.pipelines.steps.evaluation import primary_metric

AUC = primary_metric("binary")
RMSE = primary_metric("regression")


def test_first_version_becomes_champion() -> None:
    decision = decide_promotion(AUC, "1", 0.9, None, None, 0.0)
    assert decision.promoted and "first version" in decision.reason


@pytest.mark.parametrize(
    ("metric", "candidate", "champion", "min_improvement", "promoted"),
    [
        (AUC, 0.95, 0.90, 0.0, True),
        (AUC, 0.90, 0.95, 0.0, False),
        (AUC, 0.90, 0.90, 0.0, False),
        (AUC, 0.9943783068783071, 0.9943783068783068, 0.0, False),  # float noise on a tie
        (AUC, 0.91, 0.90, 0.05, False),
        (AUC, 0.96, 0.90, 0.05, True),
        (RMSE, 4.0, 5.0, 0.0, True),
        (RMSE, 6.0, 5.0, 0.0, False),
    ],
)
def test_the_gate_compares_on_the_primary_metric(metric, candidate, champion, min_improvement, promoted) -> None:
    decision = decide_promotion(metric, "2", candidate, "1", champion, min_improvement)
    assert decision.promoted is promoted
    assert decision.champion_score == champion and decision.candidate_score == candidate
    assert metric.name in decision.reason


def test_an_unscorable_champion_is_kept_and_the_user_is_told_how_to_override() -> None:
    decision = decide_promotion(AUC, "3", 0.99, "1", None, 0.0)
    assert not decision.promoted
    assert "neuroflow promote 3" in decision.reason


@pytest.fixture
def client(tracking_uri: str) -> MlflowClient:
    client = MlflowClient(tracking_uri)
    for _ in range(3):
        register_version(client, "m", "file:///tmp/model", run_id=None)  # type: ignore[arg-type]
    return client


def test_decisions_are_recorded_and_move_the_alias(client: MlflowClient) -> None:
    apply_decision(client, "m", "champion", decide_promotion(AUC, "1", 0.90, None, None, 0.0))
    apply_decision(client, "m", "champion", decide_promotion(AUC, "2", 0.85, "1", 0.90, 0.0))
    assert current_champion(client, "m", "champion") == "1"
    tags = client.get_model_version("m", "2").tags
    assert tags["neuroflow.promotion"] == "not promoted"
    assert tags["neuroflow.roc_auc"] == "0.850000" and tags["neuroflow.champion_roc_auc"] == "0.900000"
    apply_decision(client, "m", "champion", decide_promotion(AUC, "3", 0.95, "1", 0.90, 0.0))
    assert current_champion(client, "m", "champion") == "3"
    assert [(e["version"], e["action"], e["previous"]) for e in alias_history(client, "m")] == [
        ("1", "auto", None),
        ("3", "auto", "1"),
    ]


def test_promote_and_rollback_by_hand(client: MlflowClient) -> None:
    promote_version(client, "m", "champion", "1")
    promote_version(client, "m", "champion", "2")
    promote_version(client, "m", "champion", "3")
    assert rollback(client, "m", "champion") == "2"
    assert rollback(client, "m", "champion") == "1"
    assert current_champion(client, "m", "champion") == "1"
    with pytest.raises(PromotionError, match="no earlier champion"):
        rollback(client, "m", "champion")
    actions = [entry["action"] for entry in alias_history(client, "m")]
    assert actions == ["promote", "promote", "promote", "rollback", "rollback"]


def test_unknown_models_and_versions(client: MlflowClient) -> None:
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        promote_version(client, "m", "champion", "9")
    with pytest.raises(ModelNotFoundError, match="neuroflow train"):
        alias_history(client, "nothing-here")
    assert current_champion(client, "nothing-here", "champion") is None


def test_rollback_replays_moves_as_a_stack() -> None:
    def entry(version: str, action: str) -> dict[str, str]:
        return {"alias": "champion", "version": version, "action": action}

    assert rollback_target([entry("1", "auto")], "champion") is None
    assert rollback_target([entry("1", "auto"), entry("2", "auto")], "champion") == "1"
    moves = [entry("1", "auto"), entry("2", "auto"), entry("1", "rollback"), entry("3", "promote")]
    assert rollback_target(moves, "champion") == "1"


def test_promote_if_better_scores_the_champion_version(client: MlflowClient) -> None:
    asked: list[str] = []

    def champion_scores(version: str) -> float:
        asked.append(version)
        return 0.90

    first = promote_if_better(client, "m", "champion", AUC, "1", 0.80, 0.0, champion_scores)
    assert first.promoted and first.champion_after == "1" and asked == []
    loser = promote_if_better(client, "m", "champion", AUC, "2", 0.85, 0.0, champion_scores)
    assert not loser.promoted and loser.champion_after == "1" and asked == ["1"]
    winner = promote_if_better(client, "m", "champion", AUC, "3", 0.95, 0.0, champion_scores)
    assert winner.promoted and winner.champion_after == "3"
    assert current_champion(client, "m", "champion") == "3"


def test_the_alias_lock_makes_a_second_holder_wait_and_then_give_up_with_advice(client: MlflowClient) -> None:
    with (
        alias_lock(client, "m", "champion"),
        pytest.raises(PromotionError, match=r"delete the registered model 'm.lock-champion'"),
        alias_lock(client, "m", "champion", timeout=0.3, poll=0.05),
    ):
        pass
    with alias_lock(client, "m", "champion", timeout=0.3):  # released: free again
        pass
    names = {model.name for model in client.search_registered_models()}
    assert names == {"m"}


def test_a_lock_left_by_a_dead_run_is_broken(client: MlflowClient) -> None:
    client.create_registered_model(lock_name("m", "champion"), description="held by a run that died")
    with alias_lock(client, "m", "champion", timeout=5, stale_after=0.0, poll=0.05):
        assert lock_name("m", "champion") in {model.name for model in client.search_registered_models()}
    assert {model.name for model in client.search_registered_models()} == {"m"}


def test_concurrent_promotions_are_judged_one_after_the_other(client: MlflowClient) -> None:
    """Both candidates beat v1; without the lock both would read v1 as champion and the later, worse one would win."""
    promote_if_better(client, "m", "champion", AUC, "1", 0.80, 0.0, lambda version: 0.0)
    scores = {"1": 0.80, "2": 0.95, "3": 0.90}
    first_is_scoring = threading.Event()

    def slow_score(version: str) -> float:
        first_is_scoring.set()
        time.sleep(0.5)
        return scores[version]

    decisions: dict[str, PromotionDecision] = {}

    def run(version: str, score: float) -> None:
        decisions[version] = promote_if_better(client, "m", "champion", AUC, version, score, 0.0, slow_score)

    better = threading.Thread(target=run, args=("2", 0.95))
    better.start()
    assert first_is_scoring.wait(10)
    worse = threading.Thread(target=run, args=("3", 0.90))
    worse.start()
    better.join(30)
    worse.join(30)
    assert decisions["2"].promoted and decisions["2"].champion_version == "1"
    assert not decisions["3"].promoted and decisions["3"].champion_version == "2"
    assert current_champion(client, "m", "champion") == "2"
    assert [entry["version"] for entry in alias_history(client, "m")] == ["1", "2"]


def test_alias_moves_show_in_the_model_description_and_on_both_versions_and_their_runs(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("moves")
    runs = [client.create_run(experiment).info.run_id for _ in range(2)]
    for run_id in runs:
        register_version(client, "moved", "file:///tmp/model", run_id=run_id)
    apply_decision(client, "moved", "champion", decide_promotion(AUC, "1", 0.90, None, None, 0.0))
    promote_version(client, "moved", "champion", "2")
    assert rollback(client, "moved", "champion") == "1"
    description = client.get_registered_model("moved").description
    lines = description.splitlines()
    assert "| When (UTC) | Alias | Version | Before | How | Why |" in lines
    table = [line for line in lines if line.startswith("| 20")]
    assert [row.split(" | ")[2:5] for row in table] == [
        ["v1", "v2", "rollback"],
        ["v2", "v1", "promote"],
        ["v1", "none", "auto"],
    ]
    first, second = (client.get_model_version("moved", v).tags["neuroflow.alias_move"] for v in ("1", "2"))
    assert first.startswith("rollback ") and first.endswith("became champion")
    assert second.startswith("rollback ") and second.endswith("lost champion to v1")
    assert client.get_run(runs[0]).data.tags["neuroflow.champion"] == "yes"
    assert client.get_run(runs[1]).data.tags["neuroflow.champion"].startswith("no (v1 since ")
