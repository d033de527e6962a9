"""The mistakes the CLI catches before anything slow starts: settings, files, the target column, a forced task the
target cannot be. pandas at most: no server, no TensorFlow, MLflow, Prefect or Great Expectations."""

import urllib.error
import urllib.request

from ..core.errors import DataLoadError, StoreUnavailableError
from ..core.settings import Settings, TrackingSettings, redact
from ..models.schema import DataSchema
from ..pipelines.steps import tables

HEALTH_TIMEOUT_SECONDS = 3.0


def check_training_input(settings: Settings) -> None:
    """Raise the project's error for a data file, target, task, reference schema or tracking server that cannot
    work."""
    check_tracking_server(settings.tracking)
    data = settings.data
    if data.reference_schema is not None:
        if not data.reference_schema.expanduser().is_file():
            raise DataLoadError(f"reference schema {data.reference_schema} does not exist; check the path")
        DataSchema.load(data.reference_schema.expanduser())  # a file that is no schema fails here, clearly
    if data.path is None:
        if data.target and data.target != "target":
            raise DataLoadError(f"bundled data set {data.dataset!r} has target column 'target', not {data.target!r}")
        return
    path = data.path.expanduser()
    columns = tables.read_columns(path, data.delimiter)
    target = str(data.target)
    if target not in columns:
        raise tables.missing_column("target column", target, columns, data.path)
    for name in data.categorical:
        if name not in columns or name == target:
            raise tables.missing_column("categorical column", name, [c for c in columns if c != target], data.path)
    if data.task != "auto":  # a forced task is checked against the target's values (one column read, not the file)
        values = tables.read_column(path, target, data.delimiter, data.decimal, data.thousands)
        tables.check_task(values, data.task)


def check_tracking_server(tracking: TrackingSettings) -> None:
    """A tracking server that does not answer its health check is reported now, not after the data has loaded."""
    uri = tracking.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    health = f"{uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(health, timeout=HEALTH_TIMEOUT_SECONDS):
            return
    except urllib.error.HTTPError:
        return  # it answers; what it says about the calls that matter comes later
    except (urllib.error.URLError, OSError) as error:
        why = getattr(error, "reason", error)
        raise StoreUnavailableError(
            f"the MLflow tracking server at {redact(uri)} does not answer ({why}). Start it (for example `mlflow "
            f"server --host 127.0.0.1 --port 5000`), check --tracking-uri / NEUROFLOW_TRACKING__TRACKING_URI, or leave "
            "it unset to use the local store sqlite:///mlflow.db."
        ) from None
