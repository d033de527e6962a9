"""`neuroflow build`: a Bento with a registered model baked in, which serves with no registry at all."""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import bentoml

from neuroflow.settings import Settings
from service.loading import ModelInfo, champion_version, describe_version, mlflow_client

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("service/**/*.py", "models/**/*.py", "neuroflow/**/*.py", "requirements.lock")


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
    client = mlflow_client(settings)
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
    log.info("building the Bento (service, models, neuroflow; model %s)", model.tag)
    bento = bentoml.bentos.build(
        "service.service:Neuroflow",
        name=store_name(name),
        description=f"neuroflow prediction service with {name} version {version} baked in.",
        labels={"registered_model": store_name(name), "version": version},
        include=list(SOURCES),
        models=[str(model.tag)],
        python={"requirements_txt": "requirements.lock", "lock_packages": False},
        build_ctx=str(PROJECT_ROOT),
    )
    return BuiltBento(str(bento.tag), str(model.tag), info, str(bento.path))
