"""The gate's evidence: a paired bootstrap of the challenger's gain over the champion on the same test rows, and
the decision it leads to. A gain inside the noise is not a win; a real one is."""

import numpy as np
import pandas as pd

from neuroflow.models.inference import Prediction
from neuroflow.models.schema import ColumnSchema, DataSchema
from neuroflow.pipelines.bookkeeping.registry import ChampionComparison, decide_promotion, judge
from neuroflow.pipelines.report.advice import PairedGain, paired_gain
from neuroflow.pipelines.steps.evaluation import primary_metric

AUC = primary_metric("binary")
RMSE = primary_metric("regression")


def binary_schema() -> DataSchema:
    return DataSchema(
        features=(ColumnSchema("x", "numeric", "float64"),),
        target=ColumnSchema("y", "categorical", "object"),
        task="binary",
        classes=("no", "yes"),
    )


def scored(truth: np.ndarray, skill: float, seed: int) -> Prediction:
    """Probabilities that rank the rows by `skill` (0: a coin, larger: better), with noise of their own."""
    rng = np.random.default_rng(seed)
    signal = np.where(truth == "yes", skill, 0.0) + rng.normal(0, 1, len(truth))
    yes = 1 / (1 + np.exp(-signal))
    return Prediction(np.where(yes > 0.5, "yes", "no"), np.column_stack([1 - yes, yes]))


def gain(truth: np.ndarray, candidate: Prediction, champion: Prediction, confidence: float = 0.9) -> PairedGain:
    return paired_gain(binary_schema(), pd.Series(truth), candidate, champion, "roc_auc", True, confidence, 300, 0)


def test_a_model_against_itself_gains_nothing_and_is_not_sure() -> None:
    truth = np.random.default_rng(1).choice(["no", "yes"], 200)
    same = scored(truth, 1.5, seed=3)
    evidence = gain(truth, same, same)
    assert evidence.gain == 0 and evidence.low == 0 and evidence.high == 0 and not evidence.sure


def test_an_equal_model_with_other_noise_is_mostly_not_promoted() -> None:
    """Same skill, another seed: the gain is noise. With confidence 0.9, at most about one in ten passes."""
    truth = np.random.default_rng(2).choice(["no", "yes"], 120)
    champion = scored(truth, 1.5, seed=0)
    sure = [gain(truth, scored(truth, 1.5, seed=seed), champion).sure for seed in range(1, 41)]
    better = [gain(truth, scored(truth, 1.5, seed=seed), champion).gain > 0 for seed in range(1, 41)]
    assert sum(sure) <= 8, sum(sure)  # the old rule (any gain) promoted about half of them
    assert sum(better) >= 12


def test_a_clearly_better_model_is_sure() -> None:
    truth = np.random.default_rng(4).choice(["no", "yes"], 300)
    evidence = gain(truth, scored(truth, 3.0, seed=1), scored(truth, 0.5, seed=2))
    assert evidence.gain > 0.2 and evidence.sure and evidence.low <= evidence.gain <= evidence.high


def test_regression_gains_count_lower_error_as_better() -> None:
    schema = DataSchema(
        features=(ColumnSchema("x", "numeric", "float64"),),
        target=ColumnSchema("y", "numeric", "float64"),
        task="regression",
    )
    truth = np.random.default_rng(5).normal(0, 10, 200)
    close = Prediction(truth + np.random.default_rng(6).normal(0, 1, 200), None)
    far = Prediction(truth + np.random.default_rng(7).normal(0, 5, 200), None)
    evidence = paired_gain(schema, pd.Series(truth), close, far, "rmse", False, 0.9, 200, 0)
    assert evidence.gain > 0 and evidence.sure


def test_the_decision_says_not_enough_evidence_and_keeps_the_champion() -> None:
    noise = PairedGain("roc_auc", 0.002, -0.004, 0.008, 114, 0.9)
    decision = decide_promotion(AUC, "4", 0.995, "3", 0.993, 0.0, paired=noise)
    assert not decision.promoted and decision.champion_after == "3"
    assert decision.reason.startswith("not enough evidence: v4 gains +0.0020 roc_auc [-0.0040, +0.0080]")
    assert "90% paired bootstrap on 114 test rows" in decision.reason and "champion stays v3" in decision.reason
    win = PairedGain("roc_auc", 0.02, 0.005, 0.03, 114, 0.9)
    assert decide_promotion(AUC, "4", 0.995, "3", 0.975, 0.0, paired=win).promoted
    assert not decide_promotion(AUC, "4", 0.995, "3", 0.975, 0.05, paired=win).promoted  # min_improvement on top


def test_without_paired_evidence_the_old_rule_holds() -> None:
    """`promotion.confidence: 0`: the champion's score alone, any gain above min_improvement wins."""
    decision = judge(AUC, "2", 0.91, "1", 0.0, lambda version: ChampionComparison(0.90))
    assert decision.promoted and decision.paired is None and "improvement +0.0100" in decision.reason
    assert judge(AUC, "2", 0.91, "1", 0.0, lambda version: 0.90).promoted
