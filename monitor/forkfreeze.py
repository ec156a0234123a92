"""Imported last by the workers' forkserver (workers.Pool's preload): moves every object that the
preloaded modules made, the language model's first, into the collector's permanent generation
(``gc.freeze``). A worker forked from the forkserver then never writes to those objects' headers
when it collects, so their pages stay shared with the forkserver and the other workers instead
of being copied into each (CPython's gc.freeze documentation; issue 16). Importing it in any
other process would freeze that process's objects too: only the forkserver imports it.

Then glibc's malloc hands back the free pages that loading left inside its heap (``malloc_trim``;
py3langid's model loading frees tens of MB): ~2 MB of the forkserver's, and so of the workers'.
"""

import ctypes
import gc

gc.collect()  # what the imports left as garbage goes first, not frozen for ever
gc.freeze()
try:
    ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols, libc's among them
except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back this way
    pass
