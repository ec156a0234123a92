"""Salience's C part (``_layout.c``), when the install built it: the same answers as
salience.py's Python, ten times cheaper (a sentence's start, a line's quotes, asides and list
tests, each in one pass over the characters, where Python's regexes look at each character of a
line with evidence six times). Built at install where a C compiler is (pyproject.toml's
ext-modules, optional); where it is not, salience.py's Python gives them
(tests/test_layout_native.py holds the two equal)."""

from __future__ import annotations

from types import ModuleType

layout: ModuleType | None
try:
    from . import _layout as layout
except ImportError:  # pragma: no cover - an install without a C compiler
    layout = None


def without_c() -> str | None:
    """What ``monitor check`` and the daemon's start say when salience runs on its Python."""
    from . import salience  # what salience uses: a test may take it away there

    if salience.native is not None:
        return None
    return ("salience runs on its Python, about ten times slower: its C part (monitor/rules/_layout.c) was not "
            "built at install, where no C compiler was found; install one (Debian: apt-get install gcc "
            "python3-dev) and install the project again")
