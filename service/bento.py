"""`neuroflow build`: a Bento with a registered model baked in, which serves with no registry at all."""

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bentoml

from ..core.codebase import ROOT, stage_modules
from ..core.settings import Settings
from ..core.store import ModelInfo, champion_version, describe_version, mlflow_client

log = logging.getLogger(__name__)

SERVICE_MODULE = f"{__package__}.service"
SERVICE = f"{SERVICE_MODULE}:Neuroflow"
LOCK_FILE = ROOT / "requirements.lock"


@dataclass(frozen=True)
class BuiltBento:
    bento_tag: str
    model_tag: str
    info: ModelInfo
    path: str


def store_name(model_name: str) -> str:
    """A BentoML-safe name (lowercase letters, digits, `-`, `_`, `.`) for a registered model name."""
    return re.sub(r"[^a-z0-9_.-]+", "-", model_name.lower()).strip("-._") or "neuroflow-model"


def build_bento(settings: Settings, version: str | None = None) -> BuiltBento:
    """Import a registered version (the champion by default) into BentoML's store and build a Bento around it."""
    client = mlflow_client(settings.tracking)
    name, alias = settings.model_name, settings.promotion.alias
    champion = champion_version(client, name, alias)
    version = version or champion
    info = describe_version(client, name, version, alias if version == champion else None)
    log.info("importing %s version %s into the BentoML model store", name, version)
    model = bentoml.mlflow.import_model(
        store_name(name),
        f"models:/{name}/{version}",
        labels={"registered_model": store_name(name), "version": version},
        metadata=info.to_json(),
    )
    log.info("building the Bento (the service and what it imports; model %s)", model.tag)
    with tempfile.TemporaryDirectory(prefix="neuroflow-bento-") as context:
        stage_sources(Path(context))
        bento = bentoml.bentos.build(
            SERVICE,
            name=store_name(name),
            description=f"neuroflow prediction service with {name} version {version} baked in.",
            labels={"registered_model": store_name(name), "version": version},
            include=["neuroflow/**/*.py", LOCK_FILE.name],
            models=[str(model.tag)],
            python={"requirements_txt": LOCK_FILE.name, "lock_packages": False},
            build_ctx=context,
        )
    return BuiltBento(str(bento.tag), str(model.tag), info, str(bento.path))


def stage_sources(context: Path) -> None:
    """Lay out what the service imports (found from its imports: no CLI, no flows) as the installed package looks, with
    the pinned requirements, as the Bento's build context."""
    stage_modules(context, SERVICE_MODULE)
    shutil.copy2(LOCK_FILE, context / LOCK_FILE.name)
