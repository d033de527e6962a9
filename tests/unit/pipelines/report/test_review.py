"""The report card of a trained network: baselines, the warnings that teach, the bootstrap interval, permutation
importance and the model card, on generated tables."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.settings import CardSettings
from neuroflow.core.spec import NetworkSpec
from neuroflow.models.forward import DenseLayer, FeatureEncoder, ForwardPass
from neuroflow.models.inference import Prediction, Predictor
from neuroflow.models.preprocessing import fit_preprocessing
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.report import advice, baseline, importance, modelcard
from neuroflow.pipelines.steps.data import Dataset, split_data
from tests.utils.factories import classification_frame, messy_frame, mixed_frame, regression_frame


def _split(frame: pd.DataFrame, target: str, task: str, test_size: float = 0.25):
    schema = infer_schema(frame, target, task)
    return schema, split_data(Dataset("d", "test", frame, target, task), test_size, 0.2, seed=0)


@pytest.mark.parametrize(
    ("frame", "target", "task", "models", "metric"),
    [
        (mixed_frame(rows=300), "label", "binary", {"logistic_regression", "gradient_boosting"}, "roc_auc"),
        (
            classification_frame(rows=300, classes=3),
            "target",
            "multiclass",
            {"logistic_regression", "gradient_boosting"},
            "f1",
        ),
        (regression_frame(rows=300), "target", "regression", {"ridge", "gradient_boosting"}, "rmse"),
    ],
)
def test_baselines_are_scored_with_the_networks_metrics(frame, target, task, models, metric) -> None:
    schema, split = _split(frame, target, task)
    report = baseline.fit_baselines(schema, split, 0, {metric: 0.5 if metric != "rmse" else 1e9})
    assert set(report.scores) == models and report.metric == metric
    assert all(metric in scores for scores in report.scores.values())
    assert report.gap is not None and report.gap < 0  # a network scoring 0.5 (or a huge RMSE) trails both
    assert report.verdict.startswith("the network trails ")
    assert {f"baseline.{model}.{metric}" for model in models} <= set(report.metrics())
    if task == "regression":  # values back in the target's units, not standardised ones
        assert report.scores["ridge"]["rmse"] < split.test_target.std()


def test_the_verdict_says_by_how_much_and_against_what() -> None:
    baselines = {"logistic_regression": {"roc_auc": 0.90}, "gradient_boosting": {"roc_auc": 0.93}}
    gap, best, line = baseline.compare({"roc_auc": 0.894}, baselines, "roc_auc", True)
    assert best == "gradient_boosting" and gap == pytest.approx(-0.036)
    assert line.startswith("the network trails gradient boosting by 0.036 ROC AUC")
    assert baseline.compare({"roc_auc": 0.95}, baselines, "roc_auc", True)[2].startswith(
        "the network beats the best baseline, gradient boosting, by 0.020 ROC AUC"
    )
    assert "level with" in baseline.compare({"roc_auc": 0.932}, baselines, "roc_auc", True)[2]
    rmse = {"ridge": {"rmse": 10.0}, "gradient_boosting": {"rmse": 8.0}}
    gap, best, line = baseline.compare({"rmse": 9.0}, rmse, "rmse", False)
    assert (
        best == "gradient_boosting" and gap == pytest.approx(-1.0) and "trails gradient boosting by 1.000 RMSE" in line
    )


def test_an_honest_verdict_is_judged_on_the_paired_interval() -> None:
    """breast_cancer said "level with logistic regression (ROC AUC 0.995 vs 0.996)" while logistic led on accuracy,
    and a price model "beat gradient boosting by 581.618 RMSE" on a 2% margin inside its interval."""
    auc = {"logistic_regression": {"roc_auc": 0.996}}
    inside = advice.PairedGain("roc_auc", -0.001, -0.006, 0.004, 114, 0.975)
    lead = "logistic regression leads on accuracy (0.982 vs 0.956, beyond its 95% paired interval)"
    line = baseline.compare({"roc_auc": 0.995}, auc, "roc_auc", True, inside, lead)[2]
    assert line.startswith("the network is level with logistic regression (ROC AUC 0.995 vs 0.996; 95% paired")
    assert line.endswith(f", but {lead}")
    prices = {"gradient_boosting": {"rmse": 26_000.0}}
    noisy = advice.PairedGain("rmse", 581.6, -2_100.0, 3_300.0, 586, 0.975)
    line = baseline.compare({"rmse": 25_418.4}, prices, "rmse", False, noisy)[2]
    assert line.startswith("the network is level with gradient boosting") and "beats" not in line
    clear = advice.PairedGain("rmse", 581.6, 120.0, 1_050.0, 586, 0.975)
    line = baseline.compare({"rmse": 25_418.4}, prices, "rmse", False, clear)[2]
    assert line.startswith("the network beats the best baseline, gradient boosting, by 581.600 RMSE (2.2% of its RMSE)")
    behind = advice.PairedGain("roc_auc", -0.03, -0.05, -0.01, 114, 0.975)
    assert baseline.compare({"roc_auc": 0.966}, auc, "roc_auc", True, behind)[2].startswith("the network trails")


def test_a_baseline_ahead_on_accuracy_beyond_its_interval_is_named() -> None:
    schema, split = _split(mixed_frame(rows=400), "label", "binary")
    truth = split.test_target.to_numpy(dtype=object)
    classes = tuple(schema.classes)
    right = np.column_stack([(truth == classes[0]) * 0.9 + 0.05, (truth == classes[1]) * 0.9 + 0.05])
    coin = np.full((len(truth), 2), 0.5)
    coin_labels = np.full(len(truth), classes[0], dtype=object)
    network = Prediction(coin_labels, coin)
    sure = {"logistic_regression": Prediction(truth, right)}
    scores = {"logistic_regression": {"accuracy": 1.0, "log_loss": 0.105}}
    clause = baseline.secondary_lead(schema, split, network, sure, scores, {"accuracy": 0.5}, 200, 0)
    assert clause is not None and clause.startswith("logistic regression leads on accuracy (1.000 vs 0.500")
    assert baseline.secondary_lead(schema, split, network, {"logistic_regression": network}, scores, {}, 200, 0) is None


def test_warnings_teach_what_to_change() -> None:
    frame = messy_frame(rows=300, positives=0.05)
    frame.columns = [name.strip() for name in frame.columns]
    schema = infer_schema(frame.drop(columns=["pixel", "nothing"]), "label", "binary")
    spec = NetworkSpec(epochs=50)
    found = advice.training_warnings(schema, frame["label"], spec, 50, 50, 7, None)
    assert any("cap of 50 epochs" in w and "--epochs" in w for w in found)
    assert any("only 7 rows" in w for w in found)
    assert any("'sunny' is 5.0%" in w and "--class-weight balanced" in w for w in found)
    quiet = advice.training_warnings(schema, frame["label"], replace(spec, class_weight="balanced"), 20, 12, 200, None)
    assert quiet == []  # stopped early, enough test rows, classes weighed


def test_the_bootstrap_interval_is_honest_about_a_tiny_test_split() -> None:
    schema = infer_schema(classification_frame(rows=100), "target", "binary")
    rng = np.random.default_rng(0)

    def interval(rows: int) -> advice.Interval:
        truth = pd.Series(rng.integers(0, 2, rows))
        positive = np.clip(truth.to_numpy() * 0.3 + rng.uniform(0, 0.7, rows), 0, 1)
        prediction = Prediction((positive > 0.5).astype(int).astype(str), np.column_stack([1 - positive, positive]))
        return advice.bootstrap_interval(schema, truth, prediction, "roc_auc", rounds=300)

    small, large = interval(12), interval(600)
    assert small.low <= small.value <= small.high and large.low <= large.value <= large.high
    assert (small.high - small.low) > 3 * (large.high - large.low)
    assert "95% interval" in small.describe() and "12 test rows" in small.describe()


def test_permutation_importance_finds_the_one_feature_the_model_reads() -> None:
    frame = classification_frame(rows=300, features=4)
    frame["city"] = np.random.default_rng(1).choice(["a", "b", "c"], 300)
    schema, split = _split(frame, "target", "binary")
    preprocessing = fit_preprocessing(schema, split.train_features, split.train_target)
    encoder = FeatureEncoder.from_transform(preprocessing.features)
    kernel = np.zeros((encoder.width, 1), dtype=np.float32)
    informative = max(range(4), key=lambda i: abs(np.corrcoef(frame[f"f{i}"], frame["target"])[0, 1]))
    sign = np.sign(np.corrcoef(frame[f"f{informative}"], frame["target"])[0, 1])
    kernel[encoder.numeric.index(f"f{informative}"), 0] = 4.0 * sign
    predictor = Predictor(schema, encoder, ForwardPass((DenseLayer(kernel, np.zeros(1, np.float32), "sigmoid"),)))
    columns = importance.input_columns(predictor)
    assert len(columns["city"]) >= 3 and all(len(columns[f"f{i}"]) == 1 for i in range(4))
    table = importance.permutation_importance(predictor, split.test_features, split.test_target, repeats=3)
    assert table["feature"].iloc[0] == f"f{informative}" and table["importance"].iloc[0] > 0.1
    assert (table.set_index("feature").drop(index=f"f{informative}")["importance"].abs() < 1e-9).all()


def test_the_model_card_renders_as_markdown_and_self_contained_html() -> None:
    schema = infer_schema(mixed_frame(rows=100), "label", "binary")
    decision = SimpleNamespace(
        promoted=False,
        metric="roc_auc",
        candidate_score=0.91,
        champion_version="3",
        champion_score=0.93,
        reason="v4 scored 0.9100, below the champion's 0.9300",
    )
    report = baseline.BaselineReport(
        {"logistic_regression": {"roc_auc": 0.92}, "gradient_boosting": {"roc_auc": 0.94}},
        0.3,
        "roc_auc",
        "the network trails gradient boosting by 0.030 ROC AUC",
        -0.03,
        "gradient_boosting",
    )
    table = pd.DataFrame({"feature": ["age", "city"], "importance": [0.2, 0.01], "std": [0.02, 0.01]})
    card = modelcard.build_card(
        model_name="churn",
        version="4",
        run_id="abc",
        dataset={"name": "churn", "source": "churn.csv", "digest": "1234abcd", "rows": 100, "split": "train 60"},
        schema=schema,
        validation="12/12 expectations met",
        scores={"roc_auc": 0.91, "accuracy": 0.85},
        interval=advice.Interval("roc_auc", 0.91, 0.85, 0.96, 20),
        baselines=report,
        decision=decision,
        importance=table,
        training={"epochs": 50},
        warnings=["the test split has only 20 rows"],
        card=CardSettings(intended_use="Rank customers for a call.", limitations="Not for pricing."),
    )
    markdown, page = card.markdown(), card.html()
    for text in (
        "# Model card: churn v4",
        "digest `1234abcd`",
        "95% interval 0.850 to 0.960",
        "| ROC AUC | 0.9100 | 0.9200 | 0.9400 |",
        "**Not promoted** on ROC AUC: v4 scored 0.9100, below the champion's 0.9300.",
        "| age | 0.2000 |",
        "Rank customers for a call.",
        "Not for pricing.",
        "the test split has only 20 rows",
    ):
        assert text in markdown, text
    assert "<script" not in page and "http" not in page and "<td>0.9400</td>" in page and "Not for pricing." in page
    # the page renders the Markdown: emphasis, code and lists as HTML, never as their marks
    assert "**" not in page and "`" not in page and "<strong>Not promoted</strong>" in page
    assert "<code>1234abcd</code>" in page and "<li>the test split has only 20 rows</li>" in page


def test_the_decision_is_one_sentence_that_says_it_once() -> None:
    """It read "…there was no champion to compare with). first version: no champion yet"."""
    first = SimpleNamespace(
        promoted=True,
        metric="f1",
        candidate_score=0.9123,
        champion_version=None,
        reason="first version: no champion yet",
    )
    sentence = modelcard.decision_sentence(first, "multiclass")
    assert sentence == "**Promoted to champion**: first version: no champion yet (macro F1 0.9123 on the test rows)."
    assert sentence.count("champion") == 2 and sentence.count(".") == 2  # the score's point and the full stop
