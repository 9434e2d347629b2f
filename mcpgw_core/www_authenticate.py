"""Parsing of `WWW-Authenticate` challenges (RFC 9110 sec. 11.6.1), for RFC 9728 discovery."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A token68 stands alone: it must be followed by the end or a comma, else it is a parameter.
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
# Unquoted parameter values are tokens by the grammar; URLs are accepted too, because some
# servers send `resource_metadata=https://...` unquoted and refusing it helps nobody.
_BARE_VALUE = re.compile(r'[^\s,"]+')
_WHITESPACE = " \t"


class ChallengeSyntaxError(ValueError):
    """The header is not a list of challenges."""


@dataclass(frozen=True)
class Challenge:
    """One challenge: scheme (lower-cased), parameters (names lower-cased) or a token68."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict, hash=False)
    token68: str | None = None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group()

    def quoted_string(self) -> str:
        self.pos += 1  # the opening quote
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                return "".join(chars)
            chars.append(char)
        raise ChallengeSyntaxError("unterminated quoted string")


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse every `WWW-Authenticate` header value into its challenges, in order."""
    challenges: list[Challenge] = []
    for value in values:
        challenges.extend(_parse_one(value))
    return challenges


def _parse_one(text: str) -> list[Challenge]:
    scanner = _Scanner(text)
    challenges: list[Challenge] = []
    while True:
        scanner.skip(_WHITESPACE + ",")
        if scanner.at_end():
            return challenges
        scheme = scanner.match(_TOKEN)
        if scheme is None:
            raise ChallengeSyntaxError("expected an authentication scheme")
        if scanner.peek() not in ("", ",", " ", "\t"):
            raise ChallengeSyntaxError("authentication scheme must be followed by a space")
        scanner.skip(_WHITESPACE)
        token68 = scanner.match(_TOKEN68)
        params = {} if token68 is not None else _parse_params(scanner)
        challenges.append(Challenge(scheme.lower(), params, token68))


def _parse_params(scanner: _Scanner) -> dict[str, str]:
    params: dict[str, str] = {}
    while True:
        start = scanner.pos
        scanner.skip(_WHITESPACE + ",")
        name = scanner.match(_TOKEN)
        if name is None:
            if scanner.at_end():
                return params
            raise ChallengeSyntaxError("expected a parameter name")
        scanner.skip(_WHITESPACE)
        if scanner.peek() != "=":
            # Not `name=value`: this token is the scheme of the next challenge.
            scanner.pos = start
            return params
        scanner.pos += 1
        scanner.skip(_WHITESPACE)
        if scanner.peek() == '"':
            value = scanner.quoted_string()
        else:
            bare = scanner.match(_BARE_VALUE)
            if bare is None:
                raise ChallengeSyntaxError("expected a parameter value")
            value = bare
        # RFC 9110: a parameter name occurs at most once per challenge; the first one counts.
        params.setdefault(name.lower(), value)
        scanner.skip(_WHITESPACE)
        if scanner.at_end():
            return params
        if scanner.peek() != ",":
            raise ChallengeSyntaxError("expected a comma between parameters")


def bearer_param(challenges: Iterable[Challenge], name: str) -> str | None:
    """The first value of parameter `name` among the Bearer challenges, if any."""
    for challenge in challenges:
        if challenge.scheme == "bearer" and name in challenge.params:
            return challenge.params[name]
    return None
