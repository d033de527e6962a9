"""`neuroflow ui`: the MLflow UI on the local store, stopped with the command however it is stopped."""

import os
import sys
from typing import Annotated

import typer

from ..core.settings import load_settings
from .options import ConfigOption, TrackingOption, option_overrides
from .output import friendly_errors

app = typer.Typer()


@app.command(
    epilog="Examples:\n\n  neuroflow ui\n\n  neuroflow ui --port 5001 --tracking-uri sqlite:///other/mlflow.db"
)
@friendly_errors
def ui(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    tracking_uri: TrackingOption = None,
) -> None:
    """Open the MLflow UI on the local store (or say where the configured tracking server is)."""
    from .processes import run_until_stopped, stopped_by_request

    settings = load_settings(config, option_overrides(tracking_uri=tracking_uri))
    uri = settings.tracking.tracking_uri
    if uri.startswith(("http://", "https://")):
        typer.echo(f"Runs are on the tracking server {uri}: open {settings.tracking.browser_url} in a browser.")
        return
    typer.echo(f"MLflow UI on {uri}: http://{host}:{port}  (Ctrl+C to stop)")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    returncode = run_until_stopped(command, dict(os.environ))
    if not stopped_by_request(returncode):
        raise typer.Exit(returncode)
