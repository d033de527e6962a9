"""`neuroflow serve` and `build`: the champion over HTTP, and a Bento with a model baked in."""

import os
import sys
from typing import Annotated

import typer

from .options import SERVICE, SettingsRequest, model_options, with_options
from .output import friendly_errors

app = typer.Typer()

SERVICE_PATH = "neuroflow.service.service:Neuroflow"
SERVE_EXAMPLES = """\
Examples:

  neuroflow serve                                       # the breast_cancer champion on 127.0.0.1:3000

  neuroflow serve --dataset wine --port 3001 --workers 2

  neuroflow serve --bento neuroflow-breast_cancer:latest   # a Bento from `neuroflow build`, no registry
"""


@app.command(epilog=SERVE_EXAMPLES)
@friendly_errors
@with_options(model_options)
def serve(
    request: SettingsRequest,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: 127.0.0.1).", rich_help_panel=SERVICE)
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: 3000).", rich_help_panel=SERVICE)] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (default: 1).", rich_help_panel=SERVICE)] = None,
    bento: Annotated[
        str | None,
        typer.Option(
            help="Serve a Bento from `neuroflow build` (its baked model; no registry).", rich_help_panel=SERVICE
        ),
    ] = None,
) -> None:
    """Serve the champion over HTTP (BentoML): POST /predict, GET /metadata, /readyz, /metrics, /docs.

    The service follows the champion: it checks the registry every service.poll_seconds and on POST /reload.
    """
    from .processes import run_until_stopped, stopped_by_request

    settings = request.settings(service={"host": host, "port": port, "workers": workers})
    service = settings.service
    env = {
        **os.environ,
        "NEUROFLOW_TRACKING__MODEL_NAME": settings.model_name,
        "NEUROFLOW_TRACKING__TRACKING_URI": settings.tracking.tracking_uri,
        "NEUROFLOW_SERVICE__HOST": service.host,
        "NEUROFLOW_SERVICE__PORT": str(service.port),
        "NEUROFLOW_SERVICE__WORKERS": str(service.workers),
    }
    if request.config is not None:
        env["NEUROFLOW_CONFIG"] = str(request.config.resolve())
    what = f"Bento {bento}" if bento else f"{settings.model_name}@{settings.promotion.alias}"
    typer.echo(f"serving {what} on http://{service.host}:{service.port}  (docs at /docs, Ctrl+C to stop)")
    command = [sys.executable, "-m", "bentoml", "serve", bento or SERVICE_PATH]
    returncode = run_until_stopped([*command, "--host", service.host, "--port", str(service.port)], env)
    if not stopped_by_request(returncode):
        raise typer.Exit(returncode)


@app.command(epilog="Examples:\n\n  neuroflow build\n\n  neuroflow build --version 3 --dataset wine")
@friendly_errors
@with_options(model_options)
def build(
    request: SettingsRequest,
    version: Annotated[str | None, typer.Option(help="Registered version to bake in (default: the champion).")] = None,
) -> None:
    """Build a Bento with a registered model baked in; it serves with no registry (`neuroflow serve --bento TAG`)."""
    from ..service.bento import build_bento

    built = build_bento(request.settings(), version)
    typer.echo(f"built Bento {built.bento_tag} with {built.info.name} version {built.info.version}")
    typer.echo(f"  model:       {built.model_tag} (BentoML model store)")
    typer.echo(f"  serve it:    neuroflow serve --bento {built.bento_tag}")
    typer.echo(f"  image:       bentoml containerize {built.bento_tag}")
