"""The architecture's rules, checked: one third-party library per module, imports point down
the module table, and each config key documented with its default."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from monitor import config

PKG = Path(__file__).resolve().parent.parent / "monitor"
ROOT = PKG.parent

# library -> the only module allowed to import it (aiohttp: its client in fetch, its server in web)
OWNERS = {
    "feedparser": "parse", "trafilatura": "extract", "apprise": "notify",
    "sqlite_utils": "store", "psycopg": "store",
    "apscheduler": "daemon",
    "aiohttp": ("fetch", "web"), "click": "cli",
    "yaml": "rules", "pydantic": "config", "tomllib": "config", "py3langid": "language",
    "prometheus_client": "metrics", "jinja2": ("render", "web"), "markupsafe": ("render", "web"),
    "tqdm": "cli", "scipy": "learn", "feedparser_rs": "fastparse",
    "numpy": ("learn", "language"),  # language: py3langid's numpy tables, memory-mapped
    "argon2": "passwords",
    # cluster mode's work queue; the store makes its schema under the store's migration lock
    "procrastinate": ("cluster", "store"),
}
# a module may import only modules of a strictly lower level
LEVEL = {
    "__init__": 0, "errors": 0, "models": 0, "text": 0, "noise": 0, "schedule": 0, "sdnotify": 0,
    "addresses": 0, "urlsecrets": 0,
    "passwords": 0,  # console passwords: argon2 hashes, and a login check that does not time user names
    "links": 1,  # signed feedback links: mint and check, stdlib hmac
    "feedback": 3,  # what /feedback/<token> does, on the store and links
    "dates": 0,  # every date/time parse; imports nothing of ours, so even level 0 may use it
    "webhook": 1,  # the JSON poster notify hands json:// channels to
    "serve": 1,  # the workers' loop, in the worker processes
    "forkfreeze": 0,  # imported by the workers' forkserver alone: gc.freeze() before it forks
    "workers": 2, "config": 1, "language": 1, "opml": 1, "render": 1,
    "health": 1,  # the feed-health decider: pure, on schedule and models
    "leases": 0,  # who holds what: owner identity and which owners are gone
    "lockfile": 1,  # one daemon per database, and its heartbeat file
    "learn": 1,  # rules that learn: train and apply a rule's recalibration, pure
    "fastparse": 1,  # parse's fast path (feedparser-rs), answering in feedparser's shape
    "fastxml": 0,  # the fast path's expat pass: well-formed as feedparser sees it, its summary rule replayed
    "fastmarkup": 0,  # markup the fast path reads around feedparser-rs: empty-element tags, description HTML
    "fastnames": 0,  # what each element name is to the expat pass (feedparser's name for it, its role), per process
    "fetch": 2, "parse": 2, "extract": 2, "rules": 2, "store": 2, "notify": 2,
    "pipeline": 3, "training": 3, "delivery": 3,
    "loading": 3,  # the checked notifier and rules (config, notify, rules): check, start, reload
    "finding": 3,  # the feed a page or feed URL stands for: `feeds add` and the console
    "metrics": 3, "dispatch": 4,
    "cluster": 5,  # cluster mode's work queue (Procrastinate): enqueue, poll jobs, stalled nodes' jobs
    "web": 4,  # the HTTP endpoint and the console (issue 18): renders what the store answers
    "service": 5, "daemon": 6, "cli": 7,
}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        name = rel.parts[0].removesuffix(".py")
        yield name, path, ast.parse(path.read_text("utf-8"))


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield 0, a.name, []
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or "", [a.name for a in node.names]


def test_every_module_has_a_level():
    assert {name for name, _, _ in _modules()} <= set(LEVEL)


@pytest.mark.parametrize("name,path,tree", list(_modules()),
                         ids=lambda x: str(x)[-30:] if isinstance(x, str | Path) else "")
def test_library_owners_and_layering(name, path, tree):
    for level, module, names in _imports(tree):
        top = module.split(".")[0]
        if level == 0 and top in OWNERS:
            assert name in OWNERS[top] if isinstance(OWNERS[top], tuple) else OWNERS[top] == name, \
                f"{path}: imports {top}, which belongs to {OWNERS[top]}"
        if level == 0 and top == "monitor":
            targets = module.split(".")[1:2] or names
        elif level == 1 and path.parent == PKG:
            targets = [module.split(".")[0]] if module else names
        elif level == 2:  # from a subpackage (monitor/rules/) up to the package
            targets = [module.split(".")[0]] if module else names
        else:
            continue
        for t in targets:
            if t in LEVEL and t != name:
                assert LEVEL[t] < LEVEL[name] or t in ("__init__", "dates"), f"{path} imports {t}"


def test_every_config_key_is_in_the_example_with_its_default():
    example = tomllib.loads((ROOT / "config.example.toml").read_text("utf-8"))
    for section, model in [("monitor", config.MonitorSection), ("poll", config.PollSection),
                           ("fetch", config.FetchSection), ("extract", config.ExtractSection),
                           ("notify", config.NotifySection), ("http", config.HttpSection),
                           ("web", config.WebSection), ("retention", config.RetentionSection)]:
        assert set(example[section]) == set(model.model_fields), section
        for key, field in model.model_fields.items():
            assert field.description, f"{section}.{key} has no help text"
            if section == "notify" and key in ("default_channels", "ops_channels"):
                continue  # the example names its console channel
            default = field.get_default(call_default_factory=True)
            assert example[section][key] == default, f"{section}.{key}"


def test_readme_covers_quick_start_and_every_command():
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "make run" in readme and "make test" in readme
    for cmd in ("run", "once", "check", "parse", "extract", "match", "feeds", "status", "alerts", "notify-test",
                "prune", "doctor", "feedback", "users"):
        assert f"monitor {cmd}" in readme, cmd
    for section in ("monitor", "poll", "fetch", "extract", "notify", "http", "web", "retention"):
        assert f"[{section}]" in readme or f"`{section}." in readme, section


def test_modules_stay_small():
    for _, path, _ in _modules():
        assert len(path.read_text("utf-8").splitlines()) <= 400, path


def test_the_store_is_one_interface_that_store_implements_exactly():
    """store/api.py's StoreAPI is what a second SQL backend implements: Store has exactly its
    methods, with the same parameters (names, kinds, defaults)."""
    import inspect

    from monitor.store import Store, StoreAPI

    def public(cls: type) -> dict[str, object]:
        return {n: getattr(cls, n) for n in dir(cls) if not n.startswith("_") and n not in ("path", "dialect")}

    declared, implemented = public(StoreAPI), public(Store)
    assert set(implemented) == set(declared), set(implemented) ^ set(declared)
    for name, fn in declared.items():
        if isinstance(fn, property):
            assert isinstance(implemented[name], property), name
            continue
        want = inspect.signature(fn)
        got = inspect.signature(inspect.unwrap(implemented[name]))  # type: ignore[arg-type]
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == [
            (p.name, p.kind, p.default) for p in want.parameters.values()], name


def test_nothing_outside_the_store_asks_it_what_its_interface_does_not_declare():
    """Every ``store.X(...)`` / ``db.X(...)`` call outside store/ names a StoreAPI method (or
    the database thread's own: post, call_next, busy), and only store/ opens a Store itself."""
    from monitor.store import StoreAPI

    allowed = {n for n in dir(StoreAPI) if not n.startswith("_")} | {"post", "call_next", "busy"}
    wrong = []
    for name, path, tree in _modules():
        if name == "store":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                last = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if last in ("store", "db") and node.func.attr not in allowed:
                    wrong.append(f"{path.name}:{node.lineno} {last}.{node.func.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("store"):
                wrong += [f"{path.name}:{node.lineno} imports Store" for a in node.names if a.name == "Store"]
    assert wrong == []
