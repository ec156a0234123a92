"""A text's language, with py3langid.

Importing this module loads the model, so only worker processes import it: the worker pool's
forkserver preloads it, and the workers forked from it share that one copy of the model. The
daemon's own process never imports it; ``extract`` calls it from inside the workers.

The model's two big tables (48 MB: the feature weights, 100,053 x 142 float16, and the
tokenizer's DFA, 9.8 million uint16) are memory-mapped from a cache folder instead of held in
the heap (issue 16). A text touches a few hundred of their pages, so a process holds only the
pages it has read, as clean file pages that the kernel may drop and read again, and an idle
forkserver holds a few MB of them instead of 48 MB of its own heap. The first process to load
the model writes the cache (about 50 MB, once per model: the folder's name carries a hash of
py3langid's model file); where no cache folder can be written, the model is held in memory as
py3langid loads it. The folder is ``[monitor]``-independent, since the forkserver imports this
module before any config is read: ``$MONITOR_CACHE_DIR``, else systemd's ``$CACHE_DIRECTORY``
(the unit's ``CacheDirectory=``), else ``$XDG_CACHE_HOME/rss-monitor``, else
``~/.cache/rss-monitor``. Every answer is py3langid's own (tests/test_extract.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import py3langid
from py3langid import langid as _langid

MIN_CHARS = 20  # below this a guess is noise
FORMAT = 1  # of the cache folder's files


def cache_root() -> Path | None:
    """Where the model's cache folder goes, or None when there is no such place."""
    for name in ("MONITOR_CACHE_DIR", "CACHE_DIRECTORY"):
        value = os.environ.get(name, "")
        if value:
            return Path(value.split(":")[0])  # systemd lists several folders with ':'
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg:
        return Path(xdg) / "rss-monitor"
    try:
        return Path.home() / ".cache" / "rss-monitor"
    except RuntimeError:  # no home to speak of
        return None


def _model_file() -> Path:
    return Path(_langid.MODEL_DIR) / _langid.MODEL_FILE


def cache_folder(root: Path | None = None) -> Path | None:
    """The cache folder of the installed py3langid model (named by its file's hash)."""
    root = root if root is not None else cache_root()
    if root is None:
        return None
    digest = hashlib.sha256(_model_file().read_bytes()).hexdigest()[:16]
    return root / f"langid-{FORMAT}-{digest}"


def mapped(folder: Path) -> Any:
    """The identifier read from ``folder``, its big tables memory-mapped. Raises OSError or
    ValueError for a folder that is missing, incomplete or not of this format."""
    meta = json.loads((folder / "meta.json").read_text("utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder}: format {meta.get('format')!r}")
    classes = meta["classes"]
    ptc = np.load(folder / "ptc.npy", mmap_mode="r", allow_pickle=False)
    nextmove = np.load(folder / "nextmove.npy", mmap_mode="r", allow_pickle=False)
    pc = np.load(folder / "pc.npy", allow_pickle=False)
    row = np.load(folder / "row.npy", allow_pickle=False)
    out = np.load(folder / "out.npy", allow_pickle=False)
    if (ptc.ndim != 2 or ptc.shape[1] != len(classes) or pc.shape != (len(classes),) or nextmove.ndim != 1
            or len(row) != len(out) or list(ptc.shape) + [nextmove.size, len(row)] != meta["sizes"]):
        raise ValueError(f"{folder}: tables of the wrong shape")
    # a memoryview indexes like py3langid's array: one Python int per DFA step, read in place
    return _langid.LanguageIdentifier(ptc, pc, classes, memoryview(nextmove), out.tolist(), tk_row=row.tolist())


def write_cache(folder: Path, model: Any) -> None:
    """Write ``model``'s tables to ``folder``, whole or not at all (a temporary folder beside it,
    renamed; another process that got there first wins)."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".langid-", dir=folder.parent))
    try:
        nextmove = model.tk_nextmove
        np.save(tmp / "ptc.npy", np.ascontiguousarray(model.nb_ptc), allow_pickle=False)
        np.save(tmp / "nextmove.npy", np.frombuffer(nextmove, dtype=np.dtype(nextmove.typecode)), allow_pickle=False)
        np.save(tmp / "pc.npy", np.asarray(model.nb_pc), allow_pickle=False)
        np.save(tmp / "row.npy", np.asarray(model.tk_row, dtype=np.int64), allow_pickle=False)
        np.save(tmp / "out.npy", np.asarray(model.tk_output, dtype=np.int64), allow_pickle=False)
        sizes = [*model.nb_ptc.shape, len(nextmove), len(model.tk_row)]
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "classes": list(model.nb_classes),
                                                   "sizes": sizes}), "utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load() -> tuple[Any, str]:
    """The identifier, and how it was had: "mapped" (from the cache), "cached" (loaded, cache
    written, then mapped) or "memory" (no cache folder could be read or written)."""
    try:
        folder = cache_folder()
    except OSError:
        folder = None
    if folder is not None and folder.is_dir():
        try:
            return mapped(folder), "mapped"
        except (OSError, ValueError, KeyError, TypeError):  # an old or broken cache: made again below
            shutil.rmtree(folder, ignore_errors=True)
    model = _langid._load_identifier()
    if folder is not None:
        try:
            write_cache(folder, model)
            return mapped(folder), "cached"
        except (OSError, ValueError, KeyError, TypeError):  # read-only, full: the model stays in memory
            pass
    return model, "memory"


_model, how = load()
# py3langid builds its per-state tables as lists of 104,583 Python ints each (8 MB); every
# classify() touches the ints it walks, and a touched int's refcount is a write, which copies
# its page into the worker that walked it. As arrays the same numbers are plain bytes that
# workers only read, so they stay shared with the forkserver; classify() indexes them as it
# indexed the lists, and answers the same (tests/test_extract.py).
for _name in ("_rowbase", "tk_output"):
    if isinstance(getattr(_model, _name, None), list):
        setattr(_model, _name, array("q", getattr(_model, _name)))
_langid.IDENTIFIER = _model  # what py3langid.classify uses
py3langid.classify("warm-up: load the model at import, in the forkserver")


def detect(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None for a text too short to tell."""
    sample = text.strip()[:1000]  # ~1 ms; a thousand characters leave no doubt
    if len(sample) < MIN_CHARS:
        return None
    lang, _score = py3langid.classify(sample)
    return str(lang)
