"""apprise loads only the plugins of the schemes the channels use (monitor/notify/plugins.py), and reads
each URL exactly as with all its plugins loaded. Each case runs a fresh interpreter: apprise's
plugin manager is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#news-alerts"
MAIL = "mailtos://alerts:secret@smtp.example.org?mode=starttls&from=a@example.org&to=b@example.org"
HOOK = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"


def fresh(code: str) -> dict:
    """Run ``code`` (which sets ``out``) in a new interpreter; ``out`` as JSON."""
    script = "import json, sys\n" + textwrap.dedent(code) + "\nprint(json.dumps(out))"
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])


READ = """
from monitor.errors import ConfigError
from monitor.models import Channel
from monitor.notify import Notifier

def read(urls):
    try:
        n = Notifier({"c": Channel("c", tuple(urls), "c")})
    except ConfigError as e:
        return "refused: " + str(e)
    return [[type(s).__name__, s.url(privacy=True)] for s in n._apprise["c"]]

def loaded():
    return sorted(m for m in sys.modules if m.count(".") == 2 and m.startswith("apprise.plugins.")
                  and m != "apprise.plugins.base")
"""


def test_every_scheme_is_found_where_apprise_finds_it():
    """The table of notify/plugins.py against apprise's own full load: each scheme's first candidate
    module that claims it is the module apprise maps it to, and no two plugins claim one scheme."""
    out = fresh("""
        from apprise.plugins import N_MGR
        from monitor.notify import plugins
        N_MGR.load_modules()
        claims = {}
        for name, meta in N_MGR._module_map.items():
            for p in meta["plugin"]:
                for s in p.schemas(p):
                    claims.setdefault(s, []).append(name)
        out = {s: [names, plugins.candidates(s)] for s, names in claims.items()}
    """)
    assert len(out) > 200
    for scheme, (modules, candidates) in out.items():
        assert len(modules) == 1, f"{scheme}:// is claimed by {modules}"
        assert modules[0] in candidates, f"plugins.MODULES: {scheme}:// is in apprise.plugins.{modules[0]}"


@pytest.mark.parametrize("urls", [
    ["log://", SLACK, MAIL], ["json://127.0.0.1:9/hook", "form://example.org/x"], [HOOK], ["log://", HOOK],
    ["slack://onlyone"], ["nonsense://x"], ["mailto://"], ["tgram://bottoken/"],
])
def test_a_channel_reads_as_with_every_plugin_loaded(urls):
    partial = fresh(READ + f"out = [read({urls!r}), loaded()]")
    full = fresh(READ + f"from apprise.plugins import N_MGR\nN_MGR.load_modules()\nout = read({urls!r})")
    assert partial[0] == full
    schemes = {u.split("://")[0] for u in urls}
    if not schemes & {"https", "nonsense"}:  # those need every plugin: a pasted service URL, an unknown one
        assert len(partial[1]) <= 2, partial[1]


def test_a_later_channel_with_another_scheme_is_read_too():
    """SIGHUP brings a channel with a new scheme, then a pasted URL: each is placed in turn."""
    out = fresh(READ + f"""
out = [read(["log://"]), len(loaded()), read([{SLACK!r}]), len(loaded()), read([{HOOK!r}]), len(loaded()),
       read(["log://"])]
""")
    assert out[0] == [["CustomNotifyPluginWrapper", "log://"]] and out[1] == 0
    assert out[2][0][0] == "NotifySlack" and out[3] == 1
    assert out[4][0][0] == "NotifySlack" and out[5] > 150
    assert out[6] == out[0]
