"""Find the champion in the MLflow registry (or a baked model folder) and load it ready to serve.

No BentoML here; the service wires these functions, and the tests call them directly.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.errors import RequestError
from ..core.settings import ServiceSettings
from ..core.store import ModelInfo, describe_version
from ..models.inference import Predictor
from ..models.loading import LoadedVersion, load_folder, load_version
from ..models.requests import RequestParser
from ..models.schema import DataSchema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """Everything one request needs, swapped in as a whole: the predictor, its request parser and its identity."""

    info: ModelInfo
    predictor: Predictor
    parser: RequestParser
    example: list[dict[str, Any]] | None = None  # real training rows (the input example logged with the model)
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def schema(self) -> DataSchema:
        return self.predictor.schema

    def decision_threshold(self) -> dict[str, Any] | None:
        """Binary models: the probability of the positive class from which it is the answer, and how it was set."""
        if self.schema.task != "binary":
            return None
        threshold = self.predictor.threshold
        chosen_by = "default" if threshold is None else "best F1 on the validation rows"
        return {
            "positive_class": (self.schema.classes or ("", ""))[-1],
            "threshold": threshold or 0.5,
            "chosen_by": chosen_by,
        }

    def metadata(self) -> dict[str, Any]:
        """What `GET /metadata` answers."""
        return {
            "model_name": self.info.name,
            "model_version": self.info.version,
            "alias": self.info.alias,
            "run_id": self.info.run_id,
            "source": self.info.source,
            "loaded_at": self.loaded_at,
            "task": self.schema.task,
            "classes": list(self.schema.classes) if self.schema.classes else None,
            "metrics": self.info.metrics,
            "decision_threshold": self.decision_threshold(),
            "calibration_temperature": self.predictor.forward.temperature if self.schema.task != "regression" else None,
            "data_digest": self.info.data_digest,
            "schema": self.schema.to_dict(),
        }


def load_registered(
    client: Any, name: str, version: str, alias: str | None, settings: ServiceSettings, trust_store: bool = False
) -> LoadedModel:
    """A registered version through the safe loader (its files checked against the digests on the version, loaded
    as data; TensorFlow is not imported), ready to serve."""
    return ready(load_version(describe_version(client, name, version, alias), trust_store), settings)


def load_directory(
    directory: Path, info: ModelInfo, settings: ServiceSettings, trust_store: bool = False
) -> LoadedModel:
    """Load a model from a folder that holds an MLflow model (a model baked into a Bento), checked the same way."""
    model_folder = next(path.parent for path in sorted(directory.rglob("MLmodel")))
    return ready(load_folder(model_folder / "artifacts", info, trust_store), settings)


def ready(loaded: LoadedVersion, settings: ServiceSettings) -> LoadedModel:
    """The loaded version with the request parser its schema and the service's limits make, and the first row of its
    input example that this parser accepts (the OpenAPI page's example request)."""
    predictor, info, example = loaded.predictor, loaded.info, loaded.example
    if loaded.example_problem:
        log.info("no input example for the OpenAPI page (%s)", loaded.example_problem)
    parser = RequestParser.for_limits(predictor.schema, settings)
    accepted = None
    for record in example or ():
        try:
            parser.parse_python([record])
        except RequestError:
            continue
        accepted = [record]
        break
    return LoadedModel(info, predictor, parser, accepted)
