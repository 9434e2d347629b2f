"""`mcpgw-callback`: run the callback service under uvicorn with the app factory."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from callback_service.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mcpgw-callback",
        description="The MCPGateway OAuth callback service. It takes no arguments: every "
        "setting comes from MCPGW_CALLBACK_* environment variables (see "
        "callback_service/settings.py and the Helm chart's values).",
    )
    parser.parse_args(argv)
    settings = get_settings()  # invalid or unsafe settings stop the process here
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # httpx logs every request line at INFO; the service logs what matters itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(
        "callback_service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Query strings carry codes and states; uvicorn's access log would print them.
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
