"""Answers for people and programs: a small escaped HTML page, or JSON when it is asked for."""

from __future__ import annotations

from html import escape
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from callback_service.errors import ServiceError

# The callback URL carries the code: no caching, no Referer, no framing, no scripts.
SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5}}
code{{background:#eee;padding:0 .2em}}</style></head>
<body><h1>{title}</h1>{paragraphs}</body></html>
"""


def wants_json(request: Request) -> bool:
    """JSON when the client names it and does not also prefer HTML (browsers send both)."""
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def page(
    request: Request, status_code: int, title: str, lines: list[str], body: dict[str, Any]
) -> Response:
    """`body` as JSON, or an HTML page whose every line is escaped."""
    if wants_json(request):
        return JSONResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    html = _PAGE.format(title=escape(title), paragraphs=paragraphs)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def error_page(request: Request, error: ServiceError) -> Response:
    headers = {"Retry-After": "30"} if error.status_code == 503 else {}
    response = page(
        request,
        error.status_code,
        error.headline,
        [error.message, f"Reason: {error.reason}", error.next_step],
        error.body(),
    )
    response.headers.update(headers)
    return response
