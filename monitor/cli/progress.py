"""Progress for the long one-off commands (``monitor once``, ``monitor rules test``): a tqdm bar
on standard error when it is a terminal; nothing more when it is not (CI, a pipe, a file), where
those commands already write plain lines: a log line per feed, a result line per article.

tqdm because it is made for this (rate, ETA, terminal width, redrawing under other output) and
small, with no dependencies. While a bar is shown, our log lines and result lines go above it
through ``tqdm.write``; the log handler stays ours (not tqdm's logging_redirect_tqdm, which
swaps in a handler without our filters), so the secret mask keeps working (issue 14).
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import Any, TextIO

import click


class _Above:
    """A stream for a logging handler that writes above the bar instead of through it."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=self.stream, end="")

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """``with Progress("polled", "feed") as p: total -> p.start(n); p.step(); p.echo(line)``.
    Without a terminal on stderr every call but ``echo`` does nothing."""

    def __init__(self, desc: str, unit: str, stream: TextIO | None = None):
        self.desc, self.unit = desc, unit
        self.stream = stream or sys.stderr
        self.bar: Any = None
        self._handlers: list[logging.StreamHandler] = []

    def __enter__(self) -> Progress:
        return self

    def start(self, total: int | None) -> Progress:
        """Show the bar (``total`` None: a counter with its rate); returns self."""
        if self.bar is not None or not _is_terminal(self.stream):
            return self
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=self.stream, dynamic_ncols=True)
        for h in logging.getLogger().handlers:
            if isinstance(h, logging.StreamHandler) and h.stream is self.stream:
                h.setStream(_Above(self.stream))
                self._handlers.append(h)
        return self

    def step(self, *_: object) -> None:
        """One more done (takes and ignores what a callback passes, e.g. a poll's Outcome)."""
        if self.bar is not None:
            self.bar.update(1)

    def echo(self, text: str, err: bool = False) -> None:
        """A result line: above the bar when there is one, else plain click.echo."""
        if self.bar is None:
            click.echo(text, err=err)
        else:
            self.bar.write(text, file=sys.stderr if err else sys.stdout)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for h in self._handlers:
            h.setStream(self.stream)
        self._handlers.clear()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
