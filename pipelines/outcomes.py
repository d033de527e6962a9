"""What the flows return: typed outcomes the CLI, the tests and a caller read by attribute, never by string key."""

from dataclasses import dataclass, field
from typing import Any

from .steps.tuning import TrialResult


@dataclass(frozen=True)
class RegisteredOutcome:
    """A run that registered a version: where to find the run and what the promotion gate decided."""

    run_id: str
    experiment_id: str
    run_url: str
    model_name: str
    version: str
    promoted: bool
    champion_version: str | None
    decision: str

    def verdict(self) -> str:
        """What the gate made of the new version, as the end of a sentence."""
        if self.promoted:
            return "is now champion"
        return f"did not take the alias (champion stays v{self.champion_version})"


@dataclass(frozen=True)
class TrainingOutcome(RegisteredOutcome):
    """A training run: the above, its test metrics and the store it was logged to."""

    test_metrics: dict[str, float] = field(default_factory=dict)
    tracking_uri: str = ""
    interval: str | None = None  # the primary metric with its bootstrap interval
    baseline: str | None = None  # the one-line verdict against the scikit-learn baselines
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnchangedOutcome:
    """A training that registered nothing: its data and settings equal those the champion was trained from."""

    run_id: str
    experiment_id: str
    run_url: str
    model_name: str
    champion_version: str
    tracking_uri: str = ""
    promoted: bool = False

    @property
    def reason(self) -> str:
        """Why nothing was registered, and how to train anyway."""
        return (
            f"the data and the training settings equal those {self.model_name} v{self.champion_version} (the "
            "champion) was trained from, so nothing was registered. Pass --force (the flow's `force` parameter) to "
            "train anyway."
        )


@dataclass(frozen=True)
class TuningOutcome(RegisteredOutcome):
    """A search: the above for its best trial, and how every trial ended."""

    best_trial: int = 0
    best_knobs: dict[str, Any] = field(default_factory=dict)
    trials: tuple[TrialResult, ...] = ()
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoringOutcome:
    """A scoring run: what was scored with which version, where it went, and its MLflow run."""

    run_id: str
    run_url: str
    model_name: str
    version: str
    rows: int
    scored: int
    rejected: int
    output: str
    rejects: str | None
    seconds: float


@dataclass(frozen=True)
class MonitoringOutcome:
    """A look at the served records: the verdict, the MLflow run with the report, and any training it started."""

    model_name: str
    model_version: str | None
    verdict: str
    drift_detected: bool
    drifted_features: tuple[str, ...]
    share_drifted: float
    rows: int
    run_url: str | None
    retraining_run_id: str | None = None
    retraining: str = ""
