"""The project's exceptions. Each message says what went wrong and what to do next."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class NeuroflowError(Exception):
    """Base class: an error the user can fix. The CLI prints it without a traceback."""


class ConfigError(NeuroflowError):
    """A setting, option or config file is invalid."""


class DataLoadError(NeuroflowError):
    """The data set could not be read or does not fit the request (missing file, empty, no target column)."""


class DataValidationError(NeuroflowError):
    """The data broke its expectations; nothing was trained or registered."""

    def __init__(self, message: str, failures: list[str], report_path: Path | None) -> None:
        super().__init__(message)
        self.failures = failures
        self.report_path = report_path


class SchemaMismatchError(NeuroflowError):
    """Input rows do not match the schema the model was trained on."""


class ModelNotFoundError(NeuroflowError):
    """The registry has no such model, version or alias."""


class PromotionError(NeuroflowError):
    """The champion alias could not be moved as asked."""


class TrainingError(NeuroflowError):
    """Training produced no model (every trial of a search failed)."""


class RegistryUnavailableError(NeuroflowError):
    """The MLflow registry could not be reached or failed; nothing was decided on what it would have said."""


class UntrustedModelError(NeuroflowError):
    """A model's files are not what was registered, or not in the data-only format neuroflow loads without running
    code from the artifact store."""


class StoreUnavailableError(NeuroflowError):
    """The MLflow tracking store did not answer (or refused a write) within the configured time."""


class PromotionUndecidedError(PromotionError):
    """The gate could not decide (the registry failed mid-decision): the alias did not move and the version says so."""


class SmokeTestFailedError(NeuroflowError):
    """A registered version did not load, or did not answer, as the service would serve it: a defect, not a
    promotion decision. The run fails; the version is tagged with why and never promoted."""


class ChampionNotComparableError(NeuroflowError):
    """The champion cannot be scored on the candidate's test rows (other columns or classes, or files refused)."""


class MonitoringError(NeuroflowError):
    """Monitoring cannot compare: no reference for the version, or no log to read."""


@dataclass(frozen=True)
class RequestProblem:
    """One thing wrong with a request: where (a JSON path such as `records[0].age`) and what."""

    field: str
    problem: str


@dataclass
class RequestError(Exception):
    """A request the service refuses, with the HTTP status and every problem found (up to a limit)."""

    status: int
    error: str
    problems: list[RequestProblem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "detail": [{"field": problem.field, "problem": problem.problem} for problem in self.problems],
        }
