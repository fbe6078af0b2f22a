"""The command line: `inferpool start FOLDER`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import InvalidRequest
from .settings import Settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s [front end] %(levelname)s %(name)s: %(message)s",
    )


@click.group()
@click.version_option(__version__, prog_name="inferpool")
def main() -> None:
    """inferpool: serve Python models over the V2 inference protocol."""


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--host",
    default=None,
    help="Address to listen on [default: 127.0.0.1; env INFERPOOL_HOST]",
)
@click.option(
    "--http-port",
    type=int,
    default=None,
    help="REST port [default: 8080; env INFERPOOL_HTTP_PORT]",
)
@click.option(
    "--grpc-port",
    type=int,
    default=None,
    help="gRPC port [default: 8081; env INFERPOOL_GRPC_PORT]",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Prometheus metrics port [default: 8082; env INFERPOOL_METRICS_PORT]",
)
@click.option(
    "--parallel-workers",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes; 0 runs models in the server process [default: 1; env INFERPOOL_PARALLEL_WORKERS]",
)
@click.option(
    "--log-level",
    default=None,
    help="Logging level [default: INFO; env INFERPOOL_LOG_LEVEL]",
)
def start(folder: Path, **flags: Any) -> None:
    """Serve every model folder under FOLDER (one model-settings.json each,
    found recursively), with server settings from FOLDER/settings.json,
    INFERPOOL_* environment variables and these flags, in rising priority.
    SIGINT and SIGTERM drain in-flight requests and exit with status 0."""
    try:
        settings = Settings.from_repository(folder, **flags)
    except (InvalidRequest, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _configure_logging(settings.log_level)

    from .server import StartupError, run

    try:
        run(settings)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(0)
