"""A text's language, with py3langid.

Importing this module loads the model (about 1 s and 120 MB), so only worker processes
import it: the worker pool's forkserver preloads it, and the workers forked from it share
that one copy of the model. The daemon's own process never imports it; ``extract`` calls it
from inside the workers.
"""

from __future__ import annotations

from array import array

import py3langid

MIN_CHARS = 20  # below this a guess is noise

py3langid.classify("warm-up: load the model at import, in the forkserver")
# py3langid keeps two per-state tables of its DFA as lists of 104,583 Python ints each (8 MB);
# every classify() touches the ints it walks, and a touched int's refcount is a write, which
# copies its page into the worker that walked it. As arrays the same numbers are plain bytes
# that workers only read, so they stay shared with the forkserver; classify() indexes them as it
# indexed the lists, and answers the same (tests/test_extract.py).
_model = py3langid.langid.IDENTIFIER
for _name in ("_rowbase", "tk_output"):
    if isinstance(getattr(_model, _name, None), list):
        setattr(_model, _name, array("q", getattr(_model, _name)))


def detect(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None for a text too short to tell."""
    sample = text.strip()[:1000]  # ~1 ms; a thousand characters leave no doubt
    if len(sample) < MIN_CHARS:
        return None
    lang, _score = py3langid.classify(sample)
    return str(lang)
