"""`neuroflow`: train, tune, schedule, promote, roll back, serve and browse models.

One module per group of commands (training, registry, serving, ui), the options they share (`options`) and what is
shown to the person at the terminal (`output`). Heavy libraries load only once a command needs them, after every
check that can fail fast (`preflight`).
"""

from typing import Annotated

import typer

from ..core import __version__
from . import monitoring, registry, scoring, serving, training, ui
from .output import exit_with, install_fast_exit

app = typer.Typer(
    name="neuroflow",
    help=(
        "From a tabular data set to a registered, versioned neural network, served over HTTP.\n\n"
        "Settings come from options, NEUROFLOW_* environment variables (nested with __, e.g. "
        "NEUROFLOW_NETWORK__EPOCHS=20), a .env file and --config FILE (YAML or TOML), in that order.\n\n"
        "Start with `neuroflow train`, then `neuroflow ui` to browse the run and `neuroflow serve` to serve the "
        "champion."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for group in (training, registry, serving, scoring, monitoring, ui):
    app.add_typer(group.app)


def show_version(asked: bool) -> None:
    """`--version`: print it and stop before any command runs."""
    if asked:
        typer.echo(f"neuroflow {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Options that apply before any command."""


def main() -> None:
    """Entry point of the `neuroflow` command."""
    install_fast_exit()
    try:
        app()
    except SystemExit as done:
        exit_with(done.code)
