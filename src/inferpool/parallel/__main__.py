"""Entry point of a worker process: `python -m inferpool.parallel --fd N ...`."""

from __future__ import annotations

from .worker import main

main()
