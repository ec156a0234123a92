"""Imported last by the workers' forkserver (workers.Pool's preload): moves every object that the
preloaded modules made, the language model's first, into the collector's permanent generation
(``gc.freeze``). A worker forked from the forkserver then never writes to those objects' headers
when it collects, so their pages stay shared with the forkserver and the other workers instead
of being copied into each (CPython's gc.freeze documentation; issue 16). Importing it in any
other process would freeze that process's objects too: only the forkserver imports it.
"""

import gc

gc.collect()  # what the imports left as garbage goes first, not frozen for ever
gc.freeze()
