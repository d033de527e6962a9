"""Nothing changed, nothing registered: a training whose data and settings equal those the champion was trained
from would register a duplicate of it (a nightly run on unchanged data did: "roc_auc 0.9954 vs champion v1 0.9954").

A run's fingerprint covers every value of the data (MLflow's data set digest reads only the first rows), the schema
it was held to, the split, the network settings and neuroflow's version; it is recorded on the run and the version.
"""

import hashlib
import json
from typing import Any

import pandas as pd

from ...core import __version__
from ...core.mlflowhttp import failing_fast
from ...core.settings import Settings
from ...models.schema import DataSchema

FINGERPRINT_TAG = "neuroflow.training_fingerprint"


def content_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of every value of a table, with its column names and types (row order counts: it decides the split)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(name), str(dtype)] for name, dtype in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def training_fingerprint(frame: pd.DataFrame, schema: DataSchema, settings: Settings) -> str:
    """What decides the model a training makes, as one digest: the data, the schema, the split, the network and the
    code that trains it."""
    data = settings.data
    facts: dict[str, Any] = {
        "data": content_digest(frame),
        "schema": schema.to_dict(),
        "split": {"test_size": data.test_size, "validation_size": data.validation_size, "seed": data.seed},
        "network": settings.network.model_dump(mode="json"),
        "neuroflow": __version__,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def unchanged_since(client: Any, name: str, alias: str, fingerprint: str) -> str | None:
    """The champion's version if it was trained from this very fingerprint, else None. A registry that cannot say
    (one short attempt) is None too: the run trains, and the promotion gate decides under its own rules."""
    from mlflow.exceptions import MlflowException

    with failing_fast():
        try:
            champion = client.get_model_version_by_alias(name, alias)
        except (MlflowException, OSError):  # no champion, or the registry did not answer; a bug is not "changed"
            return None
    return str(champion.version) if (champion.tags or {}).get(FINGERPRINT_TAG) == fingerprint else None
