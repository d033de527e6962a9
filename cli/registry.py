"""`neuroflow promote`, `rollback` and `history`: moving the champion alias by hand, and its record."""

from typing import Annotated, Any

import typer

from ..core.settings import Settings
from .options import SettingsRequest, model_options, with_options
from .output import friendly_errors

app = typer.Typer()


def open_registry(request: SettingsRequest) -> tuple[Settings, Any]:
    """The settings in effect and an MLflow client on their registry."""
    from ..pipelines.bookkeeping import tracking

    settings = request.settings()
    return settings, tracking.configure_tracking(settings.tracking)


@app.command(epilog="Example:\n\n  neuroflow promote 3 --dataset wine")
@friendly_errors
@with_options(model_options)
def promote(
    request: SettingsRequest, version: Annotated[str, typer.Argument(help="Model version to make champion.")]
) -> None:
    """Move the champion alias to VERSION by hand (recorded in the alias history)."""
    from ..pipelines.bookkeeping import registry

    settings, client = open_registry(request)
    registry.promote_version(client, settings.model_name, settings.promotion.alias, version)
    typer.echo(f"{settings.model_name}@{settings.promotion.alias} → version {version}")


@app.command(epilog="Example:\n\n  neuroflow rollback --model-name churn --tracking-uri http://127.0.0.1:5000")
@friendly_errors
@with_options(model_options)
def rollback(request: SettingsRequest) -> None:
    """Give the champion alias back to the version that held it before the current one."""
    from ..pipelines.bookkeeping import registry

    settings, client = open_registry(request)
    version = registry.rollback(client, settings.model_name, settings.promotion.alias)
    typer.echo(f"{settings.model_name}@{settings.promotion.alias} → version {version} (rolled back)")


@app.command(epilog="Example:\n\n  neuroflow history --dataset wine")
@friendly_errors
@with_options(model_options)
def history(request: SettingsRequest) -> None:
    """List every move of the champion alias, oldest first."""
    from ..pipelines.bookkeeping import registry

    settings, client = open_registry(request)
    entries = registry.alias_history(client, settings.model_name)
    if not entries:
        typer.echo(f"{settings.model_name} has no alias moves yet.")
    for entry in entries:
        previous = f"(was v{entry['previous']})" if entry.get("previous") else "(first)"
        moved = f"{entry['alias']} → v{entry['version']:<4} {previous:<10}"
        typer.echo(f"{entry['at']}  {moved} {entry['action']:<8} {entry['reason']}")
