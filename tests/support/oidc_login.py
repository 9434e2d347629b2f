"""Completes the oidc-provider peer's devInteractions login and consent pages headlessly."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

MAX_STEPS = 20
HTTP_TIMEOUT = httpx.Timeout(10.0)
# devInteractions accept any password; this one is not a credential anywhere.
DEV_PASSWORD = "dev-interactions-accept-anything"


class AuthorizationFlowError(RuntimeError):
    """The authorization server answered something the headless login cannot continue from."""


@dataclass
class HtmlForm:
    """One <form> of a page: where it posts and the named input values it would send."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collects forms (with their inputs) and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self.text: list[str] = []
        self._open: HtmlForm | None = None
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("script", "style"):
            self._skip_depth += 1
        elif tag == "form":
            self._open = HtmlForm(
                action=attributes.get("action", ""),
                method=attributes.get("method", "get").lower(),
            )
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and attributes.get("name"):
            self._open.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip_depth:
            self._skip_depth -= 1
        elif tag == "form":
            self._open = None

    def handle_data(self, data: str) -> None:
        if not self._skip_depth and data.strip():
            self.text.append(data.strip())


def parse_page(html: str) -> tuple[list[HtmlForm], str]:
    """Returns the forms of an HTML page and its visible text, whitespace collapsed."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.forms, " ".join(parser.text)


def _without_query(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path


def _is_client_redirect(
    location: str, redirect_uri: str | None, as_origin: tuple[str, str]
) -> bool:
    if redirect_uri is not None:
        return _without_query(location) == _without_query(redirect_uri)
    # No redirect_uri in the request (a single registered one may be omitted): the first hop
    # leaving the authorization server's origin is the one to the client.
    return _without_query(location)[:2] != as_origin


def _describe(response: httpx.Response) -> str:
    """A short, secret-free description of an unexpected page (path only, no query)."""
    _, text = parse_page(response.text)
    return f"HTTP {response.status_code} at {urlsplit(str(response.url)).path}: {text[:300]}"


def _next_submission(response: httpx.Response, username: str) -> tuple[str, dict[str, str]]:
    forms, _ = parse_page(response.text)
    prompt_forms = [form for form in forms if "prompt" in form.fields and form.method == "post"]
    if len(prompt_forms) != 1:
        raise AuthorizationFlowError(f"expected one login or consent form; {_describe(response)}")
    form = prompt_forms[0]
    fields = dict(form.fields)
    if fields["prompt"] == "login":
        fields.update(login=username, password=DEV_PASSWORD)
    elif fields["prompt"] != "consent":
        raise AuthorizationFlowError(f"unknown interaction prompt {fields['prompt']!r}")
    return urljoin(str(response.url), form.action), fields


def complete_authorization(
    authorize_url: str,
    *,
    username: str = "demo-user",
    http: httpx.Client | None = None,
    cookies: httpx.Cookies | dict[str, str] | None = None,
) -> str:
    """Drive login and consent for `authorize_url`; return the redirect URL to the client.

    The returned URL (carrying `code`, `state` and `iss`, or `error`) is not requested. Pass
    `http` to keep the authorization server's session cookies across flows: a second flow then
    skips the login page, and the consent page when the scopes were granted before.
    """
    query = parse_qs(urlsplit(authorize_url).query)
    redirect_uri = query["redirect_uri"][0] if "redirect_uri" in query else None
    as_origin = _without_query(authorize_url)[:2]
    client = http if http is not None else httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False)
    if cookies is not None:
        client.cookies.update(cookies)
    try:
        method, url, data = "GET", authorize_url, None
        for _ in range(MAX_STEPS):
            response = client.request(method, url, data=data, follow_redirects=False)
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if _is_client_redirect(location, redirect_uri, as_origin):
                    return location
                method, url, data = "GET", location, None
            elif response.status_code == httpx.codes.OK:
                url, data = _next_submission(response, username)
                method = "POST"
            else:
                raise AuthorizationFlowError(_describe(response))
        raise AuthorizationFlowError(f"no redirect to the client after {MAX_STEPS} steps")
    finally:
        if http is None:
            client.close()
