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


ReasonOption = Annotated[str, typer.Option("--reason", help="Why, in words: stored in the alias history.")]


@app.command(epilog="Example:\n\n  neuroflow promote 3 --dataset wine --reason 'v4 misreads winter rows'")
@friendly_errors
@with_options(model_options)
def promote(
    request: SettingsRequest,
    version: Annotated[str, typer.Argument(help="Model version to make champion.")],
    reason: ReasonOption = "",
) -> None:
    """Move the champion alias to VERSION by hand (recorded in the alias history, with --reason)."""
    from ..pipelines.bookkeeping import registry

    settings, client = open_registry(request)
    alias = settings.promotion.alias
    if registry.promote_version(client, settings.model_name, alias, version, reason):
        typer.echo(f"{settings.model_name}@{alias} → version {version}")
    else:
        typer.echo(f"{settings.model_name} v{version} is already {alias}; nothing was moved or recorded")


@app.command(epilog="Example:\n\n  neuroflow rollback --model-name churn --reason 'drifted on new stores'")
@friendly_errors
@with_options(model_options)
def rollback(request: SettingsRequest, reason: ReasonOption = "") -> None:
    """Give the champion alias back to the version that held it before the current one; each rollback walks one
    holder further back along the history."""
    from ..pipelines.bookkeeping import registry

    settings, client = open_registry(request)
    version = registry.rollback(client, settings.model_name, settings.promotion.alias, reason)
    typer.echo(f"{settings.model_name}@{settings.promotion.alias} → version {version} (rolled back)")


@app.command(epilog="Examples:\n\n  neuroflow versions --dataset wine\n\n  neuroflow versions --json | jq '.[0]'")
@friendly_errors
@with_options(model_options)
def versions(
    request: SettingsRequest,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list instead of a table.")] = False,
) -> None:
    """List every registered version, newest first: its primary metric with the 95% interval, the gate's decision,
    its aliases and when it was registered."""
    import json
    from dataclasses import asdict

    from ..pipelines.bookkeeping import registry

    settings, client = open_registry(request)
    rows = registry.list_versions(client, settings.model_name)
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    for row in rows:
        score = f"{row.metric} {row.score:.4f}" if row.metric and row.score is not None else "no score"
        interval = f" [{row.low:.4f}, {row.high:.4f}]" if row.low is not None and row.high is not None else ""
        aliases = f" @{', @'.join(row.aliases)}" if row.aliases else ""
        typer.echo(f"v{row.version:<4} {row.created}  {score}{interval}  {row.decision}{aliases}")
        if row.reason:
            typer.echo(f"      {row.reason[:300]}")


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
