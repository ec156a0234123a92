"""What the side-by-side benches of source trees share (unchanged_ab.py, baseline_ab.py): their
command line (the trees, --feeds, --rounds), and a farm of that many feeds with the URL list the
contenders read."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def setup(doc: str, feeds: int, rounds: int, prefix: str) -> tuple[argparse.Namespace, list[Path], dict[str, str],
                                                                    Path, subprocess.Popen[str], Path]:
    """Parse the command line (``doc``'s first paragraph is its description; ``feeds`` and ``rounds``
    the defaults), start the farm: (args, trees, env, work folder, farm process, URL list)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", type=Path, help="source trees whose daemons are compared")
    ap.add_argument("--feeds", type=int, default=feeds)
    ap.add_argument("--rounds", type=int, default=rounds)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {"NO_PROXY": "*", "no_proxy": "*"}
    work = Path(tempfile.mkdtemp(prefix=prefix))
    farm = subprocess.Popen([sys.executable, str(HERE / "farm.py"), "--feeds", str(args.feeds), "--seed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    port = json.loads(farm.stdout.readline())["port"]  # type: ignore[union-attr]
    urls = work / "urls.txt"
    urls.write_text("\n".join(f"http://127.0.0.{2 + i % 20}:{port}/feeds/{i}.xml" for i in range(args.feeds)))
    return args, [t.resolve() for t in args.trees], env, work, farm, urls
