"""Commands start at once (issue 16): ``monitor --help`` imports none of the heavy libraries and
``monitor check`` only those of what it checks, ``parse``/``extract`` on one input start no worker
pool, and workers load neither the CLI nor what only the daemon's own process uses. Each runs a fresh interpreter:
what a module imports at its top shows only there. Timings are bench/startup.py's job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import page, rss

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# what no command may import unless it uses it (pydantic, yaml: the config's and the rules')
HEAVY = {"apprise", "trafilatura", "feedparser", "sqlite_utils", "aiohttp", "jinja2", "prometheus_client",
         "apscheduler", "numpy", "py3langid", "requests", "lxml", "tqdm", "pydantic", "yaml", "re2", "Stemmer",
         "asyncio"}
# what the daemon's workers must not hold: they parse, extract and detect languages, nothing else
NOT_IN_WORKERS = {"click", "apprise", "sqlite_utils", "aiohttp", "jinja2", "prometheus_client", "apscheduler",
                  "requests", "tqdm", "pydantic", "asyncio"}


def loaded_by(args: list[str], tmp_path: Path) -> tuple[set[str], str]:
    """Top-level packages loaded by ``monitor ARGS`` run through the CLI's main, and its stdout."""
    out = tmp_path / "modules.json"
    code = textwrap.dedent(f"""
        import json, sys
        from monitor.cli import cli
        try:
            cli.main({args!r}, prog_name="monitor")
        except SystemExit as e:
            assert not e.code, e.code
        finally:
            open({str(out)!r}, "w").write(json.dumps(sorted(sys.modules)))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    return {m.split(".")[0] for m in json.loads(out.read_text())} | set(json.loads(out.read_text())), p.stdout


@pytest.mark.parametrize("args", [["--help"], ["feeds", "--help"], ["alerts", "--help"], ["rules", "--help"],
                                  ["--version"]])
def test_help_imports_no_heavy_library(args, tmp_path):
    loaded, stdout = loaded_by(args, tmp_path)
    assert "monitor" in stdout
    assert not loaded & HEAVY, f"`monitor {' '.join(args)}` imports {sorted(loaded & HEAVY)}: import them " \
        "inside the command that uses them (monitor/cli/__init__.py docstring)"


def test_check_imports_only_what_it_checks(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{tmp_path / "m.db"}"\nrules = "{ROOT / "rules"}"\n'
                   '[notify]\ndefault_channels = ["console"]\n'
                   '[channels.console]\nurls = ["log://"]\ntag = "console"\n'
                   '[[feeds]]\nurl = "https://example.com/feed.xml"\n')
    cfg.chmod(0o600)
    loaded, stdout = loaded_by(["check", "--config", str(cfg)], tmp_path)
    assert stdout.startswith(f"ok: {cfg}: 1 feeds, 1 channels")
    # what it checks: the config (pydantic), the rules (yaml, re2), the channels (apprise); the
    # built-in templates are not checked at start, so without a templates folder no jinja2
    assert {"pydantic", "yaml", "apprise"} <= loaded
    unused = {"sqlite_utils", "aiohttp", "apscheduler", "trafilatura", "feedparser", "numpy", "py3langid",
              "prometheus_client", "monitor.daemon", "monitor.store", "monitor.fetch", "jinja2"}
    assert not loaded & unused, f"`monitor check` imports {sorted(loaded & unused)}"


def test_check_still_renders_a_templates_folder(tmp_path):
    """Jinja2 is loaded when a channel has templates of its own, and a broken one fails check."""
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "text.j2").write_text("{{ alert.title }}\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{tmp_path / "m.db"}"\nrules = "{ROOT / "rules"}"\n'
                   '[notify]\ndefault_channels = ["console"]\n'
                   f'[channels.console]\nurls = ["log://"]\ntag = "console"\ntemplates = "{folder}"\n')
    cfg.chmod(0o600)
    loaded, _ = loaded_by(["check", "--config", str(cfg)], tmp_path)
    assert "jinja2" in loaded
    (folder / "text.j2").write_text("{{ alert.title \n")
    p = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert p.returncode == 2 and "text.j2:1" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_once_polls_without_the_scheduler(tmp_path):
    """`monitor once` (a cron job's poll) polls, matches and sends; APScheduler, whose import is a
    sixth of the daemon's, is only for `monitor run`."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{tmp_path / "m.db"}"\nrules = "{ROOT / "rules"}"\n'
                   '[notify]\ndefault_channels = ["console"]\n'
                   '[channels.console]\nurls = ["log://"]\ntag = "console"\n')
    cfg.chmod(0o600)
    loaded, _ = loaded_by(["once", "--config", str(cfg)], tmp_path)
    assert {"monitor.daemon", "monitor.pipeline", "aiohttp"} <= loaded  # it did start the runtime
    assert "apscheduler" not in loaded and "monitor.daemon.jobs" not in loaded, sorted(loaded)


@pytest.mark.parametrize("command", ["parse", "extract"])
def test_one_input_runs_in_process_without_a_worker_pool(command, tmp_path):
    file = tmp_path / "input"
    if command == "parse":
        file.write_text(rss([{"title": "Drone attack near Sudzha", "link": "https://example.com/a/1"}]))
    else:
        file.write_text(page("Angriff bei Sudscha", ["Ein Drohnenangriff traf am Montag ein Lager bei Sudscha "
                                                     "im Gebiet Kursk, teilten die Behörden mit."] * 3))
    loaded, stdout = loaded_by([command, str(file), "--json"], tmp_path)
    out = json.loads(stdout)
    assert "error" not in out and (out["entries"][0]["title"] == "Drone attack near Sudzha" if command == "parse"
                                   else "Drohnenangriff" in out["text"] and out["language"] == "de")
    # a forkserver (the pool's) was never started, and no HTTP client for a local file
    assert "multiprocessing.popen_forkserver" not in loaded and "multiprocessing.forkserver" not in loaded
    assert "aiohttp" not in loaded


def _in_a_fresh_process(script: Path, imports: str, main: str) -> Any:
    """The JSON answer of ``async def main()`` with body ``main``, after ``imports``, run as the
    file ``script`` in a fresh Python: a process has one forkserver, whose preload the first
    Pool of the process fixes, so a test of what workers hold needs a process of its own."""
    script.write_text(f"import asyncio, json, sys\nsys.path[:0] = [{str(TESTS)!r}, {str(ROOT)!r}]\n"
                      + textwrap.dedent(imports) + "\n\nasync def main():\n"
                      + textwrap.indent(textwrap.dedent(main).strip("\n"), "    ")
                      + "\n\n\nif __name__ == \"__main__\":\n    print(json.dumps(asyncio.run(main())))\n")
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_workers_hold_neither_the_cli_nor_the_daemons_libraries(tmp_path):
    """The daemon's worker, started from a ``monitor``-like script (a file whose ``__main__``
    imports the CLI), with the daemon's preload: what it has loaded."""
    mods = set(_in_a_fresh_process(tmp_path / "monitor-like", """
        import click, monitor.cli  # what the real entry point has loaded when the daemon starts
        import worker_tasks
        from monitor.daemon import WORKER_PRELOAD
        from monitor.workers import Pool
    """, """
        pool = Pool(1, preload=WORKER_PRELOAD)
        try:
            return await pool.run(worker_tasks.modules, timeout=60)
        finally:
            pool.close()
    """))
    loaded = {m.split(".")[0] for m in mods} | mods
    assert not loaded & NOT_IN_WORKERS, f"a worker holds {sorted(loaded & NOT_IN_WORKERS)}"
    assert not any(m.startswith(("monitor.cli", "monitor.store", "monitor.daemon", "monitor.notify", "monitor.workers"))
                   for m in mods)
    # ... and has, from the forkserver, what its tasks use
    assert {"trafilatura", "feedparser", "py3langid", "monitor.extract", "monitor.parse", "monitor.language"} <= loaded


def test_a_daemon_without_pages_preloads_no_trafilatura_and_still_extracts_a_page(tmp_path):
    """``[extract] pages = false``: the forkserver does not import trafilatura (its workers never
    use it; its import held up the first parse), and a page asked for after a reload turned
    pages on is still extracted, the worker importing it then (issue 16, G1)."""
    told = ("Nordkoreanische Soldaten sind nach Angaben aus Kiew im Gebiet Kursk eingetroffen, wo sie an der "
            "Seite russischer Einheiten kämpfen sollen. ")
    html = page("Truppen bei Kursk", [told * 3] * 4)
    got = _in_a_fresh_process(tmp_path / "no-pages", """
        import worker_tasks
        from monitor import extract
        from monitor.config import Config, ExtractSection
        from monitor.daemon.context import worker_preload
        from monitor.workers import Pool
    """, f"""
        preload = worker_preload(Config(extract=ExtractSection(pages=False)))
        pool = Pool(1, preload=preload)
        try:
            before = await pool.run(worker_tasks.modules, timeout=60)
            article = await pool.run(extract.page, {html!r}, "https://example.org/a", timeout=60)
            return {{"preload": preload, "before": before, "title": article.title}}
        finally:
            pool.close()
    """)
    assert "trafilatura" not in got["preload"] and "trafilatura" not in got["before"]
    assert {"monitor.parse", "monitor.fastparse", "monitor.language", "py3langid"} <= set(got["before"])
    assert got["title"] == "Truppen bei Kursk"
    from monitor.config import Config
    from monitor.daemon.context import worker_preload
    assert "trafilatura" in worker_preload(Config())  # pages are on by default: preloaded


def test_help_lists_each_lazy_command_as_its_own_help_would():
    """``monitor --help`` names the commands of ``LAZY`` from a stored first sentence, without
    importing them: each sentence gives what the loaded command's help gives, at any width."""
    import importlib

    import click

    from monitor.cli import LAZY, cli

    for name, (module, first) in LAZY.items():
        importlib.import_module(f"monitor.cli.{module}")
        real = cli.commands[name]
        for limit in range(3, 200):
            assert click.Command(name, help=first).get_short_help_str(limit) == real.get_short_help_str(limit), \
                f"LAZY[{name!r}] in monitor/cli/__init__.py: its sentence no longer matches the command's help"
    assert set(LAZY) | {"run", "once", "prune", "check"} == set(cli.commands)


def test_the_daemons_own_process_loads_no_worker_library():
    """What only the workers use (the parsers, trafilatura, the language model and numpy) stays
    out of the daemon's process: its workers' forkserver preloads it (issue 16: idle memory)."""
    code = "import json, sys, monitor.daemon; print(json.dumps(sorted(sys.modules)))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    loaded = {m.split(".")[0] for m in json.loads(p.stdout)}
    assert not loaded & {"feedparser", "feedparser_rs", "trafilatura", "lxml", "py3langid", "numpy", "sklearn"}


@pytest.mark.parametrize("given", [None, ""])
def test_check_skips_pydantics_plugin_search_unless_asked(given, tmp_path):
    """pydantic reads every installed package's entry points for plugins when the first model is
    built (~10 ms of a command); the CLI turns that off unless PYDANTIC_DISABLE_PLUGINS is set.
    Set to "", the search runs (what shows that this test can see it)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{tmp_path / "m.db"}"\nrules = "{ROOT / "rules"}"\n'
                   '[notify]\ndefault_channels = ["console"]\n'
                   '[channels.console]\nurls = ["log://"]\ntag = "console"\n')
    cfg.chmod(0o600)
    out = tmp_path / "plugins.json"
    code = textwrap.dedent(f"""
        import json, os, sys
        from monitor.cli import main
        sys.argv = ["monitor", "check", "--config", {str(cfg)!r}]
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
        finally:
            from pydantic.plugin import _loader
            open({str(out)!r}, "w").write(json.dumps(
                [_loader._plugins is not None, os.environ.get("PYDANTIC_DISABLE_PLUGINS")]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"} | {"PYTHONPATH": str(ROOT)}
    if given is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = given
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                       cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.startswith(f"ok: {cfg}"), p.stdout + p.stderr
    searched, value = json.loads(out.read_text())
    assert (searched, value) == ((False, "__all__") if given is None else (True, given))
