"""Which parts of a URL are secrets, for the three places that must never show one: the log
filter (cli/logs.py), ``monitor doctor`` and the warning about a config file others can read.
Pure: strings in, strings out.

apprise's privacy form (``url(privacy=True)``) masks passwords and the tokens of the services it
knows (Slack, Discord, ...), but prints a generic webhook's path (``json://host/hooks/TOKEN``)
and its header values (``json://host/x?+X-Api-Key=KEY``) as they are (apprise 2.3, checked):
``parts`` names those too, and ``mask`` hides them in any text (issue 14).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

MASK = "****"
REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")  # ${NAME}: config.py fills it in
# Query keys whose value is a credential whatever it looks like (?token=, ?apikey=, ?pass=...).
SECRET_KEY = re.compile(r"token|key|secret|pass|pwd|auth|sig|cred|session|bearer", re.IGNORECASE)
# Shorter secrets are masked only where they stand alone, so that masking a 3-character password
# does not also eat it out of every longer word in a log line.
WHOLE_WORD_BELOW = 8


def token_like(s: str) -> bool:
    """A path segment or host that reads as a generated token rather than a word or a name:
    digits and 6+ characters, mixed case and 8+, or 16+ of anything; not a #channel, an
    address or a file/host name (a dot)."""
    if not s or s[0] in "#@" or "@" in s or "." in s or REFERENCE.search(s):
        return False
    mixed = any(c.islower() for c in s) and any(c.isupper() for c in s)
    return (len(s) >= 6 and any(c.isdigit() for c in s)) or (len(s) >= 8 and mixed) or len(s) >= 16


def parts(url: str, *, paths: bool = True) -> list[tuple[str, str]]:
    """(what, value) for every part of ``url`` that may be a credential: the password; the user
    when the host is a token (``slack://user@TOKEN``) or the user looks like one; a host that is
    a token; path segments that look like tokens (``paths``: a feed's path is not a webhook's);
    query values of secret-looking keys; header values (apprise's ``+Header=value``)."""
    try:
        u = urlsplit(url)
        user, password = u.username, u.password
        host = re.sub(r":\d*$", "", u.netloc.rpartition("@")[2])  # as written: .hostname lowercases
    except ValueError:
        return []
    out: list[tuple[str, str]] = []
    if password:
        out.append(("password", password))
    host_token = bool(host) and token_like(host)
    if user and (token_like(user) or (host_token and "." not in host)):
        out.append(("user", user))
    if host_token and paths:
        out.append(("host token", host))
    if paths:
        out += [("path token", p) for p in u.path.split("/") if token_like(p)]
    for pair in u.query.split("&"):
        # not parse_qsl: it reads '+' as a space, and '+' is how apprise marks a header
        key, _, value = (unquote(x) for x in pair.partition("="))
        if not value:
            continue
        if key.startswith("+"):
            out.append((f"header {key[1:]}", value))
        elif SECRET_KEY.search(key) or (paths and len(value) >= 16 and token_like(value)):
            out.append((f"query {key.lstrip('-:')}", value))
    return out


def inline(url: str, *, paths: bool = True) -> list[str]:
    """What in a URL as written in the config is a secret written out rather than a ``${NAME}``
    reference (e.g. ``["password", "header X-Api-Key"]``); [] for the README's recipe."""
    return [what for what, value in parts(url, paths=paths) if not REFERENCE.search(value)]


def values(urls: Iterable[str], marked: Iterable[str] = ()) -> list[str]:
    """Every secret of these URLs as it may appear in a text (as written, decoded and
    percent-encoded), plus ``marked`` (values the config took from ${NAME}), longest first."""
    out: set[str] = set()
    for url in urls:
        for _, v in parts(url):
            out.update({v, unquote(v), quote(unquote(v), safe="")})
    out.update(m for m in marked if m)
    return sorted((s for s in out if len(s) >= 2), key=lambda s: (-len(s), s))


def masker(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for every secret: long ones wherever they occur, short ones as whole words
    (not inside a longer run of letters and digits; a %XX escape before them is a boundary)."""
    alts = []
    for s in sorted(set(secrets), key=len, reverse=True):
        e = re.escape(s)
        alts.append(e if len(s) >= WHOLE_WORD_BELOW
                    else rf"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{{2}})){e}(?![A-Za-z0-9])")
    return re.compile("|".join(alts)) if alts else None


def mask(text: str, pattern: re.Pattern[str] | None) -> str:
    return pattern.sub(MASK, text) if pattern is not None and text else text
