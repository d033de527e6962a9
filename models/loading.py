"""The one safe loader of a registered version: its files checked against the digests recorded on the version, then
read as data (nothing from the artifact store is unpickled or imported). The service, batch scoring, the gate and
the smoke check all load through here."""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from ..core.errors import RegistryUnavailableError, UntrustedModelError
from ..core.store import ModelInfo, download_version, example_records, reason
from .inference import Predictor, check_digests


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version loaded: its identity, its predictor and its logged input example as request records
    (None, with the reason in `example_problem`, when it has none or it cannot be read)."""

    info: ModelInfo
    predictor: Predictor
    example: list[dict[str, Any]] | None = None
    example_problem: str | None = None


def load_predictor(folder: Path, info: ModelInfo, trust_store: bool = False, with_network: bool = False) -> Predictor:
    """A model's artifact folder, checked against the digests recorded on its version, loaded as data. A version with
    no digests (registered before they existed, or by hand) loads only when the store is trusted."""
    if info.file_digests:
        check_digests(folder, info.file_digests)
    elif not trust_store:
        raise UntrustedModelError(
            f"{info.name} v{info.version} has no file digests on its version (it was registered before neuroflow "
            "recorded them, or by hand); retrain it, or set NEUROFLOW_TRACKING__TRUST_ARTIFACT_STORE=true if you "
            "trust the artifact store"
        )
    return Predictor.from_directory(folder, with_network=with_network, trust_legacy=trust_store)


def load_folder(folder: Path, info: ModelInfo, trust_store: bool = False, with_network: bool = False) -> LoadedVersion:
    """A version from its artifact folder (`<model>/artifacts`, downloaded or baked into a Bento), with its example."""
    predictor = load_predictor(folder, info, trust_store, with_network)
    try:
        return LoadedVersion(info, predictor, example_records(folder.parent))
    except (OSError, ValueError, KeyError, TypeError) as error:
        return LoadedVersion(info, predictor, None, str(error))


def load_version(info: ModelInfo, trust_store: bool = False, with_network: bool = False) -> LoadedVersion:
    """Download a registered version's files and load them. A download that fails is the registry's failure
    (RegistryUnavailableError); files that are not what was registered are UntrustedModelError."""
    with tempfile.TemporaryDirectory(prefix="neuroflow-model-") as scratch:
        try:
            folder = download_version(info, scratch)
        except (MlflowException, OSError) as error:  # MLflow's own errors; requests' and the disk's are OSErrors
            raise RegistryUnavailableError(
                f"could not download v{info.version} of {info.name} from the artifact store: {reason(error)}"
            ) from error
        return load_folder(folder, info, trust_store, with_network)
