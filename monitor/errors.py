"""The exception tree. Everything here is *expected*: catch it per feed or per alert,
log one line naming the culprit, record it, and go on. Anything else is a bug.

    MonitorError
    ├── ConfigError      bad config file or key (user input: exit 2)
    ├── RuleError        bad rule file (user input: exit 2)
    ├── FetchError       network or HTTP failure; ``kind`` classifies it
    │   └── NotModified  304, or a body identical to the last one
    ├── ParseError       the bytes are not a usable feed
    ├── ExtractError     a page could not be turned into an article
    └── NotifyError      a channel refused or could not be reached
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every expected failure."""


class ConfigError(MonitorError):
    """A configuration problem; the message names the file and key."""


class RuleError(MonitorError):
    """A rule file problem; the message names the file and line."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")


class FetchError(MonitorError):
    """``kind`` is a short class (dns, connect, timeout, tls, http-404, too-large,
    blocked-address, ...).
    ``retry_after``: seconds the server asked us to wait (429/503 Retry-After), if any."""

    def __init__(self, url: str, kind: str, detail: str = "", *, retry_after: float | None = None):
        self.url, self.kind, self.detail, self.retry_after = url, kind, detail, retry_after
        super().__init__(f"{kind}: {detail}" if detail else kind)


class NotModified(FetchError):
    """The server said 304, or sent the same body as last time. ``moved``: the new URL when
    the request went through permanent redirects only (301/308), else None."""

    def __init__(self, url: str, detail: str = "304", *, moved: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(url, "not-modified", detail)
        self.moved = moved
        self.headers = headers or {}


class ParseError(MonitorError):
    """The fetched bytes are not a feed we can use; ``kind`` is not-a-feed or parse-error."""

    def __init__(self, message: str, kind: str = "parse-error"):
        self.kind = kind
        super().__init__(message)

    def __reduce__(self) -> tuple:  # raised in a worker process: pickle both arguments
        return (type(self), (str(self), self.kind))


class ExtractError(MonitorError):
    """A page could not be extracted (not HTML, empty, too slow, crashed)."""


class NotifyError(MonitorError):
    """A notification channel failed; the message says what the service answered.
    ``status``: its HTTP status, if it answered over HTTP; ``retry_after``: seconds it asked us
    to wait (429/503 Retry-After), if any."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        self.status, self.retry_after = status, retry_after
        super().__init__(message)
