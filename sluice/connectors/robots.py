"""robots.txt rules (RFC 9309) for the web connector: parse once per run, then ask.

Not ``urllib.robotparser``: it applies the first matching rule in file order and treats
``*`` and ``$`` literally, while RFC 9309 (and every large crawler) applies the *longest*
matching rule, Allow winning a tie, and defines both wildcards; a rule such as
``Disallow: /*?sort=`` would otherwise be silently ignored.

What is implemented: groups of ``user-agent`` lines and their ``allow``/``disallow``
rules; the group(s) naming the crawler's product token (case-insensitive) apply, else
the ``*`` group(s), else nothing; ``*`` matches any run of characters and a final ``$``
anchors the end; the path and query of a URL are matched, percent-encoded the same way
on both sides; ``/robots.txt`` itself is always allowed. Other lines (``sitemap``,
``crawl-delay``...) are ignored. Only the first ``MAX_ROBOTS_BYTES`` are parsed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

MAX_ROBOTS_BYTES = 512 * 1024
"""RFC 9309 asks crawlers to parse at least 500 KiB."""

_SAFE = "/%:@!$&'()*+,;=-._~?"
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _encode(value: str) -> str:
    """Percent-encode like the connector's URLs, with upper-case escapes."""
    return _ESCAPE.sub(lambda m: m.group(0).upper(), quote(value, safe=_SAFE))


@dataclass(frozen=True)
class _Rule:
    pattern: str
    allow: bool
    regex: re.Pattern[str]

    @classmethod
    def build(cls, pattern: str, allow: bool) -> _Rule:
        pattern = _encode(pattern)
        anchored = pattern.endswith("$")
        body = pattern[:-1] if anchored else pattern
        regex = ".*".join(re.escape(part) for part in body.split("*"))
        return cls(pattern, allow, re.compile(regex + (r"\Z" if anchored else ""), re.DOTALL))


class RobotsRules:
    """The rules that apply to one crawler on one host."""

    def __init__(self, rules: Sequence[tuple[str, bool]] = ()) -> None:
        self._rules = tuple(_Rule.build(pattern, allow) for pattern, allow in rules)

    def __repr__(self) -> str:
        return f"RobotsRules({[(r.pattern, r.allow) for r in self._rules]!r})"

    def allowed(self, url: str) -> bool:
        """May the crawler fetch ``url`` (an absolute URL on this rules' host)?"""
        if not self._rules:
            return True
        parts = urlsplit(url)
        target = _encode(urlunsplit(("", "", parts.path or "/", parts.query, "")))
        if target == "/robots.txt":
            return True
        best: tuple[int, bool] | None = None
        for rule in self._rules:
            if rule.regex.match(target):
                key = (len(rule.pattern), rule.allow)  # longest wins; Allow wins a tie
                if best is None or key > best:
                    best = key
        return best is None or best[1]


ALLOW_ALL = RobotsRules()


def robots_url(url: str) -> str:
    """The robots.txt URL of ``url``'s scheme, host and port."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))


def _agent_token(value: str) -> str:
    """``Sluice/0.1 (x)`` -> ``sluice``: the product token, lower-cased."""
    words = value.strip().split()
    return words[0].split("/")[0].lower() if words else ""


def parse_robots(text: str, product_token: str) -> RobotsRules:
    """The rules for ``product_token`` (e.g. ``Sluice``) in a robots.txt body."""
    groups: list[tuple[list[str], list[tuple[str, bool]]]] = []
    in_agents = False
    for raw_line in text[:MAX_ROBOTS_BYTES].splitlines():  # characters: at least the bytes
        line = raw_line.split("#", 1)[0].strip()
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if not in_agents:
                groups.append(([], []))
                in_agents = True
            groups[-1][0].append(_agent_token(value))
        elif key in ("allow", "disallow"):
            in_agents = False
            if groups and value.startswith(("/", "*")):  # an empty Disallow allows all
                groups[-1][1].append((value, key == "allow"))
    token = product_token.lower()
    for wanted in (token, "*"):
        rules = [rule for agents, group in groups if wanted in agents for rule in group]
        if any(wanted in agents for agents, _ in groups):
            return RobotsRules(rules)
    return ALLOW_ALL
