"""Planning a search, choosing its best trial, and surviving SQLite's locks, on tiny inputs."""

from pathlib import Path

import pytest

from neuroflow.core.errors import ConfigError
from neuroflow.core.settings import NetworkSettings, TuningSettings, load_settings
from neuroflow.pipelines.bookkeeping.tracking import retry_when_locked
from neuroflow.pipelines.steps.evaluation import primary_metric
from neuroflow.pipelines.steps.tuning import (
    TrialResult,
    best_trial,
    plan_trials,
    plot_trials,
    trial_network,
    trials_frame,
)

BASE = NetworkSettings()


def test_a_grid_is_every_combination_and_is_cut_to_the_budget() -> None:
    space = {"activation": ["relu", "tanh"], "batch_size": [16, 32, 64]}
    full = plan_trials(TuningSettings(strategy="grid", trials=10, space=space), BASE)
    assert sorted((t.knobs["activation"], t.knobs["batch_size"]) for t in full) == [
        ("relu", 16),
        ("relu", 32),
        ("relu", 64),
        ("tanh", 16),
        ("tanh", 32),
        ("tanh", 64),
    ]
    assert [trial.number for trial in full] == [1, 2, 3, 4, 5, 6]
    cut = plan_trials(TuningSettings(strategy="grid", trials=4, space=space), BASE)
    assert len(cut) == 4 and len({tuple(t.knobs.items()) for t in cut}) == 4


def test_random_search_samples_ranges_inside_their_bounds_and_is_seeded() -> None:
    space = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dropout": {"low": 0.1, "high": 0.2}}
    trials = plan_trials(TuningSettings(trials=20, seed=3, space=space), BASE)
    assert len(trials) == 20
    assert all(1e-4 <= t.knobs["learning_rate"] <= 1e-2 and 0.1 <= t.knobs["dropout"] <= 0.2 for t in trials)
    again = plan_trials(TuningSettings(trials=20, seed=3, space=space), BASE)
    assert [t.knobs for t in trials] == [t.knobs for t in again]
    other = plan_trials(TuningSettings(trials=20, seed=4, space=space), BASE)
    assert [t.knobs for t in trials] != [t.knobs for t in other]


def test_trial_knobs_go_through_the_network_settings() -> None:
    network = trial_network(BASE, {"hidden_units": "16,8", "optimizer": "sgd"})
    assert network.hidden_units == (16, 8) and network.optimizer == "sgd" and network.epochs == BASE.epochs


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({"strategy": "grid", "space": {"dropout": {"low": 0, "high": 0.5}}}, "grid search needs a list"),
        ({"space": {"optimizer": ["adam", "lbfgs"]}}, "network.optimizer"),
        ({"space": {"epochs": [1, 2]}}, "cannot tune epochs"),
        ({"space": {"dropout": {"low": 0.5, "high": 0.1}}}, "low 0.5 is above high 0.1"),
        ({"space": {"l2": {"low": 0, "high": 0.1, "log": True}}}, "a log range needs low > 0"),
    ],
)
def test_a_bad_search_space_is_refused_before_anything_runs(tuning: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings = load_settings(overrides={"tuning": {"trials": 12, **tuning}})
        plan_trials(settings.tuning, settings.network)


def result(number: int, status: str, loss: float | None, scores: dict[str, float] | None = None) -> TrialResult:
    scores = {"roc_auc": 0.9} if scores is None else scores
    return TrialResult(number, {"learning_rate": 0.001 * number}, status, f"run{number}", loss, scores)


def test_the_best_trial_has_the_best_validation_primary_metric_and_failures_never_win() -> None:
    """Not the lowest val_loss: that includes the L2 penalty, and ranked the best-RMSE trial 5th of 6."""
    auc = primary_metric("binary")
    results = [
        result(1, "completed", 0.3, {"roc_auc": 0.95}),
        result(2, "failed", None),
        result(3, "early-stopped", 0.2, {"roc_auc": 0.93}),
    ]
    assert best_trial(results, auc).number == 1
    assert best_trial([result(1, "failed", None)], auc) is None
    rmse = primary_metric("regression")
    priced = [result(1, "completed", 0.1, {"rmse": 21_025.0}), result(2, "completed", 0.4, {"rmse": 19_684.0})]
    assert best_trial(priced, rmse).number == 2  # lower error wins, whatever the loss says
    undefined = [result(1, "completed", 0.5, {}), result(2, "completed", 0.6, {"roc_auc": 0.7})]
    assert best_trial(undefined, auc).number == 2  # a trial the metric is undefined for ranks last


def test_the_trials_table_and_plot_show_every_trial(tmp_path: Path) -> None:
    results = [result(2, "failed", None), result(1, "completed", 0.3), result(3, "early-stopped", 0.2)]
    frame = trials_frame(results, "roc_auc")
    assert list(frame["trial"]) == [1, 2, 3]
    assert list(frame["status"]) == ["completed", "failed", "early-stopped"]
    assert {"learning_rate", "val_loss", "validation_roc_auc", "run_id"} <= set(frame.columns)
    assert not any(name.startswith("test_") for name in frame.columns)  # the test rows are the gate's alone
    path = plot_trials(frame, tmp_path / "trials.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_writes_refused_by_a_locked_sqlite_are_retried_and_other_errors_are_not() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "written"

    assert retry_when_locked(flaky)() == "written" and len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise ValueError("bad metric")

    calls.clear()
    with pytest.raises(ValueError, match="bad metric"):
        retry_when_locked(broken)()
    assert len(calls) == 1
