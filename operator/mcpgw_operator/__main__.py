"""Entry point: `python -m mcpgw_operator` (or `mcpgw-operator`) runs the operator."""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf

from mcpgw_operator import (  # noqa: F401 - registers the handlers
    handlers,
    runtime,
    startup,
    token_handlers,
)
from mcpgw_operator.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mcpgw-operator", description=__doc__)
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint Kopf serves (empty to disable)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Every request to the API server and the AS would be an INFO line; keep the log useful.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=args.liveness or None,
        )
    )


if __name__ == "__main__":
    main()
