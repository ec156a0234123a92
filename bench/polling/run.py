"""Polling benchmark: our daemon's polling pipeline against a minimal floor and rss2email, on a
local feed farm, side by side in one run. See README.md beside this file.

    .venv/bin/python bench/polling/run.py [--quick] [--feeds 10000] [--skip-rss2email] [--skip-50k] ...

Scenarios (each on its own farm process, each contender in its own process):
  A  --feeds (10,000) feeds: daemon vs floor; passes baseline, unchanged (3), mixed (--changed share)
  B  --compare-feeds (1,000) feeds: daemon vs floor vs rss2email; baseline (the daemon's 3 times,
     --first-passes, each on a fresh database), unchanged, mixed, changed
  C  --rss-feeds (50,000) small feeds: daemon.once() baseline + unchanged; peak PSS of the tree

Every pass of every contender is checked before its time counts: the farm must have served it
one request per feed (counted at the farm per client), with the 200s and 304s the farm's state
implies, and the contender must have recorded the entries the farm served (the daemon's
database, rss2email's state and mails, the floor's own count). A failed check prints a FAIL
line, turns every goal that uses that pass to FAIL, and makes the exit status 1; a goal missed
with valid figures makes it 3.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
# The goals of issue 16: first full-parse pass >= 20x rss2email's speed (wall) at 1,000 feeds and
# daemon CPU per changed feed <= 0.5x the floor's; unchanged pass CPU per poll <= 1.1x the floor's;
# peak PSS of the daemon and all its children < 300 MB at 50,000 feeds.
GOAL_SPEEDUP, GOAL_CHANGED_CPU, GOAL_UNCHANGED_CPU, GOAL_PSS_MB = 20.0, 0.5, 1.1, 300.0
DAEMON_EXTRA: tuple[str, ...] = ()  # ("--no-allow-farm",) under --sabotage
AGENTS = {"daemon": "rss-monitor", "floor": "bench-floor", "rss2email": "rss2email"}  # User-Agent's first word
NO_PROXY_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | {"NO_PROXY": "*", "no_proxy": "*"}

try:
    import psutil
except ImportError:  # workers' RSS is then not sampled
    psutil = None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- processes ---------------------------------------------------------------------------------
class Farm:
    def __init__(self, workdir: Path, feeds: int, args: argparse.Namespace, small: bool = False):
        self.feeds, self.hosts = feeds, args.hosts
        cmd = [PY, str(HERE / "farm.py"), "--feeds", str(feeds), "--hosts", str(args.hosts),
               "--etag-share", str(args.etag_share), "--latency-ms", args.latency_ms, "--seed", str(args.seed)]
        if small:
            cmd.append("--small")
        self.stderr = open(workdir / f"farm-{feeds}.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=NO_PROXY_ENV)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"feed farm did not start; see {self.stderr.name}")
        self.port = json.loads(line)["port"]
        self.base = f"http://127.0.0.2:{self.port}/_control"
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def urls(self) -> list[str]:
        return [f"http://127.0.0.{2 + i % self.hosts}:{self.port}/feeds/{i}.xml" for i in range(self.feeds)]

    def _call(self, path: str, post: bool = False) -> dict:
        req = urllib.request.Request(self.base + path, data=b"" if post else None)
        with self.opener.open(req, timeout=30) as resp:
            return json.loads(resp.read())

    def advance(self, share: float, seed: int) -> dict:
        return self._call(f"/advance?share={share}&seed={seed}", post=True)

    def stats(self) -> dict:
        return self._call("/stats")

    def reset_stats(self) -> None:
        self._call("/reset-stats", post=True)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stderr.close()


def pss_mb(pid: int) -> float | None:
    """A live process's proportional set size (shared pages divided among their sharers), from
    /proc/PID/smaps_rollup: one read, cheap even for a big process (psutil reads all of smaps)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Sampler(threading.Thread):
    """Samples the memory of a contender and its descendants (the daemon's workers and
    forkserver) every ``every`` s: the peak of the whole tree's PSS summed (the figure of the
    memory goal: pages shared between them counted once), the peak of the descendants' RSS and
    PSS summed, and the largest single RSS. Runs in this process, so its CPU is not a
    contender's. A spike shorter than the interval can be missed; the contender's own VmHWM
    is reported beside it."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_children = self.peak_children_pss = self.peak_worker = self.peak_tree_pss = 0.0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        if psutil is None:
            return
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._halt.wait(self.every):
            try:
                kids = proc.children(recursive=True)
            except psutil.Error:
                return
            rss, pss = [], []
            for k in kids:
                try:
                    rss.append(k.memory_info().rss / 2**20)
                except psutil.Error:
                    continue
                pss.append(pss_mb(k.pid) or 0.0)
            own = pss_mb(self.pid)
            if own is None:
                continue
            self.samples += 1
            self.peak_tree_pss = max(self.peak_tree_pss, own + sum(pss))
            if rss:
                self.peak_children = max(self.peak_children, sum(rss))
                self.peak_children_pss = max(self.peak_children_pss, sum(pss))
                self.peak_worker = max(self.peak_worker, max(rss))

    def stop(self) -> None:
        self._halt.set()
        self.join(2)

    def peaks(self) -> dict:
        return {"peak_workers_mb": self.peak_children, "peak_workers_pss_mb": self.peak_children_pss,
                "peak_one_worker_mb": self.peak_worker, "peak_tree_pss_mb": self.peak_tree_pss,
                "pss_samples": self.samples}


class Contender:
    """A contender process speaking the line protocol of contenders.py."""

    def __init__(self, name: str, mode: str, workdir: Path, urls_file: Path, extra: tuple[str, ...] = ()):
        self.name = name
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workdir / "stderr.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [PY, str(HERE / "contenders.py"), mode, "--workdir", str(self.workdir), "--urls", str(urls_file), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=ROOT,
            env=NO_PROXY_ENV)
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self.proc.wait(10)
            tail = self.stderr_path.read_text()[-3000:]
            raise RuntimeError(f"{self.name} exited (code {self.proc.returncode}):\n{tail}")
        return json.loads(line)

    def run_pass(self, name: str, verb: str = "pass") -> dict:
        self.proc.stdin.write(f"{verb} {name}\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._read()

    def quit(self) -> dict:
        self.proc.stdin.write("quit\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        out = self._read()
        self.proc.wait(60)
        self.sampler.stop()
        self.stderr.close()
        return out | self.sampler.peaks()


class RSS2Email:
    """rss2email 3.x: one [feed.N] section per feed in its config, mails to a local maildir."""

    def __init__(self, workdir: Path, urls: list[str]):
        self.workdir = workdir / "rss2email"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.exe = shutil.which("r2e", path=str(Path(PY).parent)) or shutil.which("r2e")
        if not self.exe:
            raise RuntimeError("r2e not found: pip install rss2email")
        self.config, self.data = self.workdir / "r2e.cfg", self.workdir / "r2e.json"
        self.maildir = self.workdir / "maildir"
        self.maildir.mkdir()  # rss2email creates only the mailbox folder inside it
        lines = [
            "[DEFAULT]",
            "from = bench@rss2email.invalid",
            "to = reader@localhost.invalid",
            "email-protocol = maildir",
            f"maildir-path = {self.maildir}",
            "maildir-mailbox = INBOX",
            "same-server-fetch-interval = 0",
            "feed-timeout = 60",
            "",
        ]
        for i, url in enumerate(urls):
            lines += [f"[feed.f{i:05d}]", f"url = {url}", ""]
        self.config.write_text("\n".join(lines))
        self.peak_rss = 0.0

    def command(self, no_send: bool) -> list[str]:
        return [self.exe, "-c", str(self.config), "-d", str(self.data), "run", *(["--no-send"] if no_send else [])]

    def seen(self) -> int:
        """Entries rss2email has recorded as seen, over all feeds (its JSON state file)."""
        try:
            data = json.loads(self.data.read_text())
        except (OSError, ValueError):
            return 0
        return sum(len(f.get("seen") or {}) for f in data.get("feeds", []))

    def mails(self) -> int:
        return sum(len(os.listdir(self.maildir / "INBOX" / d)) for d in ("new", "cur")
                   if (self.maildir / "INBOX" / d).is_dir())

    def run_pass(self, name: str, polls: int, no_send: bool) -> dict:
        before = self.mails()
        err_path = self.workdir / f"{name}.stderr.log"
        with open(err_path, "w") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(self.command(no_send), stdout=err, stderr=err, env=NO_PROXY_ENV,
                                    cwd=self.workdir)
            peak: list[float] = []
            done = threading.Event()

            def watch() -> None:  # VmHWM only grows: the last reading before exit is the peak
                while not done.wait(0.1):
                    v = hwm_mb(proc.pid)
                    if v is not None:
                        peak.append(v)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            done.set()
            watcher.join(2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        # rss2email logs at INFO to stderr by default (3 lines a feed); keep its complaints.
        errors = [ln for ln in err_path.read_text().splitlines()
                  if any(w in ln for w in ("[WARNING]", "[ERROR]", "[CRITICAL]", "Traceback", "Error:"))]
        rss = max(peak) if peak else usage.ru_maxrss / 1024
        self.peak_rss = max(self.peak_rss, rss)
        return {"pass": name, "polls": polls, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                "exit": proc.returncode, "mails": self.mails() - before, "seen": self.seen(),
                "complaints": len(errors),
                "complaint_sample": errors[:3], "peak_rss_mb": rss,
                "how": "r2e run --no-send (first run: fetch+parse all, mails not sent)" if no_send else "r2e run"}


# -- scenarios ---------------------------------------------------------------------------------
@dataclass
class Scenario:
    key: str
    title: str
    feeds: int
    results: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # contender -> pass -> runs
    peaks: dict[str, dict] = field(default_factory=dict)
    farm: dict[str, dict] = field(default_factory=dict)  # "contender/pass" -> farm counters
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


AVAILABLE = """
import sys
try:
    from monitor import daemon, pipeline
    from monitor.store import Store
except Exception as e:
    sys.exit(f"cannot import monitor: {type(e).__name__}: {e}")
if not hasattr(Store, "add_feeds"):
    sys.exit("monitor Store has no add_feeds() yet")
for name in ("runtime", "once", "load_rules", "notifier_for"):
    if not hasattr(daemon, name):
        sys.exit(f"monitor.daemon has no {name}()")
from monitor import dispatch
if not hasattr(dispatch, "poll_all"):
    sys.exit("monitor.dispatch has no poll_all()")
"""


def daemon_available() -> str | None:
    """Why the daemon contender cannot run, or None. Asked in a child process: this one stays
    small, as every process it starts inherits its RSS as a floor of its ru_maxrss."""
    out = subprocess.run([PY, "-c", AVAILABLE], cwd=ROOT, capture_output=True, text=True)
    if out.stdout.strip():
        log(out.stdout.strip())
    return (out.stderr.strip().splitlines() or ["failed"])[-1] if out.returncode else None


def hwm_mb(pid: int) -> float | None:
    """A live process's peak RSS so far (VmHWM), in MiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def check_pass(name: str, phase: str, res: dict, stats: dict, change: dict, parses: bool) -> list[tuple]:
    """Did this contender do this pass's work? (label, ok, what was found vs expected) per check.
    ``change`` is what the farm's advance before this phase changed (zeros when it did not
    advance); ``parses``: whether this pass of the floor parses (its A baseline only fetches)."""
    feeds, etag_feeds = stats["feeds"], stats["etag_feeds"]
    base = phase == "baseline"
    want_304 = 0 if base else etag_feeds - change.get("changed_etag", 0)
    mine = stats["agents"].get(AGENTS[name], {})
    got = {k: mine.get(k, 0) for k in ("requests", "200", "304", "404")}
    others = stats["requests"] - got["requests"]
    checks = [("farm served", got["requests"] == feeds and got["404"] == 0 and others == 0
               and got["304"] == want_304 and got["200"] == feeds - want_304,
               f"req {got['requests']}/{feeds}, 200 {got['200']}/{feeds - want_304}, 304 {got['304']}/{want_304}, "
               f"404 {got['404']}, others' req {others}")]
    status = res.get("status") or {}
    if name == "daemon":
        checks.append(("polls ok", res["polls"] == feeds and not status.get("error"),
                       f"polls {res['polls']}/{feeds}, errors {status.get('error', 0)}"
                       + (f" e.g. {res['errors'][0]}" if res.get("errors") else "")))
        checks.append(("entries stored", res.get("entries") == stats["published"],
                       f"db entries {res.get('entries')}/{stats['published']}"))
    elif name == "floor":
        want = (stats["items"] if base else change.get("changed_items", 0)) if parses else 0
        checks.append(("polls ok", res["polls"] == feeds and not status.get("error")
                       and (parses or status.get("primed") == feeds),
                       f"polls {res['polls']}/{feeds}, errors {status.get('error', 0)}"))
        checks.append(("entries parsed", res.get("parsed_entries") == want,
                       f"parsed {res.get('parsed_entries')}/{want}" + ("" if parses else " (fetch only)")))
    else:  # rss2email
        checks.append(("exit 0, no warnings", res["exit"] == 0 and res["complaints"] == 0,
                       f"exit {res['exit']}, warnings/errors {res['complaints']}"
                       + (f" e.g. {res['complaint_sample'][0][:120]}" if res.get("complaint_sample") else "")))
        if base:
            checks.append(("entries seen", res["seen"] == stats["items"] and res["mails"] == 0,
                           f"seen {res['seen']}/{stats['items']}, mails {res['mails']}/0 (--no-send)"))
        else:
            want = change.get("new_items", 0)
            checks.append(("entries mailed", res["mails"] == want, f"mails {res['mails']}/{want}"))
    return checks


def lockstep(sc: Scenario, farm: Farm, workdir: Path, phases: list[tuple[str, float | None]],
             contenders: list[str], r2e: RSS2Email | None, floor_parses_baseline: bool,
             first_passes: int = 1) -> None:
    """Every contender polls the same farm state in turn; the farm advances between phases.
    The order of contenders alternates from phase to phase so that neither always goes first.
    The farm's counters are reset before each turn and read after it, then checked.
    ``first_passes``: the daemon's first pass is run this many times, each after the one before
    by a fresh daemon on a database of its own, on the same farm state (its median is taken)."""
    urls = farm.urls()
    urls_file = workdir / "urls.txt"
    urls_file.write_text("\n".join(urls))
    procs: dict[str, Contender] = {}
    try:
        for name in contenders:
            log(f"{sc.key}: starting {name} ({len(urls)} feeds)")
            procs[name] = Contender(name, name, workdir, urls_file, DAEMON_EXTRA if name == "daemon" else ())
            if procs[name].ready.get("concurrency"):
                r = procs[name].ready
                sc.notes.append(f"daemon: concurrency {r['concurrency']}, {r['per_host']} per host, "
                                f"{r['workers']} workers; allow_private: {len(r['allow_private'])} farm host:port "
                                "entries")
        order = list(procs) + (["rss2email"] if r2e else [])
        for k, (phase, share) in enumerate(phases):
            change: dict = {}
            if share:
                change = farm.advance(share, seed=1000 * (ord(sc.key) - 64) + k)
                log(f"{sc.key}: farm advanced {change['changed']} feeds ({share:.0%}), {change['new_items']} new items")
            turn = order if k % 2 == 0 else order[::-1]
            for name in turn:
                parses = True
                if name == "rss2email":
                    assert r2e is not None
                    run = functools.partial(r2e.run_pass, phase, len(urls), no_send=(phase == "baseline"))
                else:
                    parses = not (name == "floor" and phase == "baseline" and not floor_parses_baseline)
                    run = functools.partial(procs[name].run_pass, phase, "pass" if parses else "prime")
                turn_of(sc, farm, name, phase, run, change, parses)
                if name == "daemon" and phase == "baseline":
                    for j in range(2, first_passes + 1):  # a fresh daemon, a fresh database, the same farm
                        again = Contender(f"daemon-{j}", "daemon", workdir, urls_file, DAEMON_EXTRA)
                        try:
                            turn_of(sc, farm, name, phase, functools.partial(again.run_pass, phase), change, True)
                            again.quit()
                        finally:
                            if again.proc.poll() is None:
                                again.proc.kill()
        for name, proc in procs.items():
            sc.peaks[name] = proc.quit()
        if r2e:
            sc.peaks["rss2email"] = {"peak_rss_mb": r2e.peak_rss}
    finally:
        for proc in procs.values():
            if proc.proc.poll() is None:
                proc.proc.kill()


def turn_of(sc: Scenario, farm: Farm, name: str, phase: str, run: Callable[[], dict], change: dict,
            parses: bool) -> None:
    """One contender's pass: the farm's counters zeroed, ``run``, the counters read and checked
    against what the pass must have done; the result kept and logged."""
    farm.reset_stats()
    res = run()
    stats = farm.stats()
    res.update(farm={k: stats[k] for k in ("requests", "200", "304", "404", "bytes")}, change=change,
               checks=check_pass(name, phase, res, stats, change, parses))
    sc.results.setdefault(name, {}).setdefault(phase, []).append(res)
    bad = [c for c in res["checks"] if not c[1]]
    log(f"{sc.key}: {name:9s} {phase:9s} wall {res['wall']:7.2f}s cpu {res['cpu']:7.2f}s "
        f"status {res.get('status', res.get('how'))} farm 200={stats['200']} 304={stats['304']}"
        + (f" CHECK FAILED: {bad}" if bad else ""))


def scenario_c(sc: Scenario, farm: Farm, workdir: Path) -> None:
    urls_file = workdir / "urls.txt"
    urls_file.write_text("\n".join(farm.urls()))
    wd = workdir / "daemon"
    wd.mkdir(parents=True, exist_ok=True)
    log(f"C: registering {farm.feeds} feeds")
    t0 = time.perf_counter()
    out = subprocess.run([PY, str(HERE / "contenders.py"), "register", "--workdir", str(wd), "--urls", str(urls_file)],
                         cwd=ROOT, capture_output=True, text=True, env=NO_PROXY_ENV)
    if out.returncode:
        raise RuntimeError(f"register failed:\n{out.stderr[-3000:]}")
    sc.notes.append(f"registered {json.loads(out.stdout)['registered']} feeds with add_feeds() "
                    f"in {time.perf_counter() - t0:.1f}s (separate process)")
    log("C: daemon.once() baseline + unchanged in a fresh process")
    proc = Contender("daemon", "once", workdir, urls_file, DAEMON_EXTRA)
    try:
        for phase in ("baseline", "unchanged"):
            farm.reset_stats()
            res = proc.run_pass(phase)
            stats = farm.stats()
            res["farm"] = {k: stats[k] for k in ("requests", "200", "304", "404", "bytes")}
            res["checks"] = check_pass("daemon", phase, res, stats, {}, True)
            sc.results.setdefault("daemon", {}).setdefault(phase, []).append(res)
            bad = [c for c in res["checks"] if not c[1]]
            log(f"C: once {phase:9s} wall {res['wall']:7.2f}s status {res['status']} "
                f"rss {res['peak_rss_mb_so_far']:.0f} MB" + (f" CHECK FAILED: {bad}" if bad else ""))
        sc.peaks["daemon"] = proc.quit()
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()


# -- report ------------------------------------------------------------------------------------
def med(results: list[dict], key: str) -> float | None:
    vals = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v: float | None, spec: str = ".2f", width: int = 9) -> str:
    return f"{format(v, spec):>{width}}" if v is not None else f"{'—':>{width}}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def figures(sc: Scenario, name: str) -> dict[str, float | None]:
    res = sc.results.get(name, {})
    out: dict[str, float | None] = {}
    for phase, runs in res.items():
        polls, wall, cpu = med(runs, "polls"), med(runs, "wall"), med(runs, "cpu")
        primed = any(r.get("status", {}).get("primed") for r in runs)
        out[f"{phase}.pps"] = None if primed else ratio(polls, wall)
        out[f"{phase}.cpu1k"] = None if primed or cpu is None else cpu / polls * 1000 if polls else None
        out[f"{phase}.wall"] = wall
    base = res.get("baseline", [])
    if base and not any(r.get("status", {}).get("primed") for r in base) and med(base, "cpu") is not None:
        out["baseline.cpu_ms"] = med(base, "cpu") / med(base, "polls") * 1000  # every feed is new: per changed feed
    if "mixed.cpu1k" in out and out["mixed.cpu1k"] is not None:
        out["mixed.cpu_ms"] = out["mixed.cpu1k"]  # s per 1,000 polls == ms per poll
    out["rss"] = sc.peaks.get(name, {}).get("peak_rss_mb")
    out["rss_workers"] = sc.peaks.get(name, {}).get("peak_workers_pss_mb") if name == "daemon" else None
    out["tree_pss"] = sc.peaks.get(name, {}).get("peak_tree_pss_mb") if name != "rss2email" else None
    return out


def failed_checks(sc: Scenario | None, name: str, phase: str) -> list[str] | None:
    """The failed checks of a contender's runs of a phase; None when it did not run."""
    runs = sc.results.get(name, {}).get(phase) if sc else None
    if not runs:
        return None
    return [f"{label}: {detail}" for r in runs
            for label, ok, detail in r.get("checks", [("checked", False, "no checks")]) if not ok]


def checks_table(scs: dict[str, Scenario]) -> tuple[list[str], int]:
    lines, bad = [], 0
    for sc in scs.values():
        for name, phases in sc.results.items():
            for phase, runs in phases.items():
                for r in runs:
                    checks = r.get("checks") or [("checked", False, "no checks ran")]
                    ok = all(c[1] for c in checks)
                    bad += not ok
                    lines.append(f"  [{'PASS' if ok else 'FAIL'}] {sc.key} {name:9s} {phase:9s} "
                                 + "; ".join(f"{label}: {detail}" + ("" if good else " <-- FAIL")
                                             for label, good, detail in checks))
    return lines, bad


def detail_table(sc: Scenario) -> list[str]:
    lines = [f"{'contender':10s} {'pass':10s} {'polls':>6s} {'wall s':>8s} {'polls/s':>8s} {'CPU s':>8s} "
             f"{'CPU s/1k':>8s}  statuses / notes"]
    for name, phases in sc.results.items():
        for phase, runs in phases.items():
            for r in runs:
                cpu = r.get("cpu")
                status = r.get("status") or {}
                note = " ".join(f"{k}={v}" for k, v in sorted(status.items()))
                if "how" in r:
                    note = f"{r['how']}; mails={r['mails']} exit={r['exit']} warnings/errors={r['complaints']}"
                if "farm" in r:
                    f = r["farm"]
                    note += f" | farm: req={f['requests']} 200={f['200']} 304={f['304']}"
                if r.get("cpu_workers") is not None:
                    note += f" | main {r['cpu_main']:.1f}s + workers {r['cpu_workers']:.1f}s"
                if r.get("cpu") is None and r.get("cpu_main") is not None:
                    note += f" | main-process CPU {r['cpu_main']:.1f}s (workers not counted)"
                if r.get("log"):
                    note += f" | log {r['log']}"
                primed = "primed" in status
                lines.append(
                    f"{name:10s} {phase:10s} {r['polls']:6d} {r['wall']:8.2f} "
                    f"{fmt(None if primed else r['polls'] / r['wall'], '.1f', 8)} {fmt(cpu, '.2f', 8)} "
                    f"{fmt(None if primed or cpu is None else cpu / r['polls'] * 1000, '.2f', 8)}  {note}"
                    + ("  (fetch only: floor baseline is not parsed)" if primed else ""))
    return lines


def summary_table(sc: Scenario, names: list[str]) -> list[str]:
    cols = [("unchanged.pps", "pps unch", ".0f"), ("mixed.pps", "pps mixed", ".0f"),
            ("changed.pps", "pps chg", ".0f"), ("baseline.cpu_ms", "CPUms/feed 1st", ".2f"),
            ("unchanged.cpu1k", "CPUs/1k unch", ".2f"),
            ("changed.cpu1k", "CPUs/1k chg", ".2f"), ("mixed.cpu_ms", "CPUms/poll mix", ".3f"),
            ("rss", "RSS MB", ".0f"), ("rss_workers", "wrk PSS MB", ".0f"), ("tree_pss", "all PSS MB", ".0f")]
    head = f"{'':14s}" + "".join(f"{c[1]:>15s}" for c in cols)
    lines = [head]
    figs = {n: figures(sc, n) for n in names if n in sc.results}
    for n, f in figs.items():
        lines.append(f"{n:14s}" + "".join(fmt(f.get(k), spec, 15) for k, _, spec in cols))
    if "daemon" in figs and "floor" in figs:
        d, fl = figs["daemon"], figs["floor"]
        lines.append(f"{'daemon/floor':14s}" + "".join(fmt(ratio(d.get(k), fl.get(k)), ".2f", 15) for k, _, _ in cols))
    if "daemon" in figs and "rss2email" in figs:
        d, r = figs["daemon"], figs["rss2email"]
        lines.append(f"{'rss2email/dmn':14s}" + "".join(fmt(ratio(r.get(k), d.get(k)), ".2f", 15) for k, _, _ in cols))
    return lines


def goals(scs: dict[str, Scenario]) -> tuple[list[str], bool]:
    """The issue's goals as PASS/FAIL lines with their figures; a goal whose passes failed a
    check is FAIL whatever its figure (times of work not done prove nothing). (lines, all met)."""
    out: list[str] = []
    met = True

    def line(goal: str, value: str, ok: bool | None, invalid: list[str], caveat: str = "") -> None:
        nonlocal met
        if invalid:
            ok, value = False, f"{value}; INVALID, checks failed: {' | '.join(invalid)[:400]}"
        verdict = "n/a " if ok is None else "PASS" if ok else "FAIL"
        met = met and ok is not False
        out.append(f"  [{verdict}] {goal}: {value}{caveat}")

    def invalid(sc: Scenario | None, pairs: list[tuple[str, str]]) -> list[str]:
        return [f"{n}/{ph}: {f}" for n, ph in pairs for f in (failed_checks(sc, n, ph) or [])]

    def passes(sc: Scenario, cpu: bool = False) -> str:
        """The daemon's first passes behind a median: their wall times, or CPU per feed."""
        runs = sc.results.get("daemon", {}).get("baseline", [])
        return "" if len(runs) < 2 else f" (median of {len(runs)} first passes: " + ", ".join(
            f"{r['cpu'] / r['polls'] * 1000:.2f} ms" if cpu else f"{r['wall']:.1f} s" for r in runs) + ")"

    def size(sc: Scenario, goal: int) -> str:
        return "" if sc.feeds == goal else f"  (measured at {sc.feeds:,} feeds; the goal is at {goal:,})"

    b = scs.get("B")
    if b and "daemon" in b.results and "rss2email" in b.results:
        d, r = figures(b, "daemon"), figures(b, "rss2email")
        s = ratio(r.get("baseline.wall"), d.get("baseline.wall"))
        line(f"G1 first full-parse pass over 1,000 feeds >= {GOAL_SPEEDUP:.0f}x faster (wall) than rss2email",
             f"rss2email `run --no-send` {fmt(r.get('baseline.wall'), '.1f', 0)} s, daemon "
             f"{fmt(d.get('baseline.wall'), '.1f', 0)} s{passes(b)}, speed-up {fmt(s, '.1f', 0)}x",
             None if s is None else s >= GOAL_SPEEDUP, invalid(b, [("daemon", "baseline"), ("rss2email", "baseline")]),
             size(b, 1_000))
        for phase in ("unchanged", "mixed", "changed"):
            s2 = ratio(r.get(f"{phase}.wall"), d.get(f"{phase}.wall"))
            if s2 is not None:
                out.append(f"         (for information, `r2e run` {phase} pass: rss2email "
                           f"{fmt(r.get(f'{phase}.wall'), '.1f', 0)} s, daemon {fmt(d.get(f'{phase}.wall'), '.1f', 0)}"
                           f" s, speed-up {s2:.1f}x)")
    else:
        line("G1 first pass over 1,000 feeds >= 20x faster than rss2email", "not measured", None, [])
    if b and "daemon" in b.results and "floor" in b.results:
        d, f = figures(b, "daemon"), figures(b, "floor")
        r = ratio(d.get("baseline.cpu_ms"), f.get("baseline.cpu_ms"))
        line(f"G2 first full-parse pass: daemon CPU per changed feed <= {GOAL_CHANGED_CPU}x the floor's",
             f"daemon {fmt(d.get('baseline.cpu_ms'), '.2f', 0)} ms{passes(b, cpu=True)}, floor "
             f"{fmt(f.get('baseline.cpu_ms'), '.2f', 0)} ms "
             f"(feedparser, sanitiser off), ratio {fmt(r, '.2f', 0)}",
             None if r is None else r <= GOAL_CHANGED_CPU, invalid(b, [("daemon", "baseline"), ("floor", "baseline")]),
             size(b, 1_000))
        rc = ratio(d.get("changed.cpu1k"), f.get("changed.cpu1k"))
        if rc is not None:
            out.append(f"         (for information, every feed changed again: daemon {d['changed.cpu1k']:.2f} ms, "
                       f"floor {f['changed.cpu1k']:.2f} ms per feed, ratio {rc:.2f})")
    else:
        line("G2 daemon CPU per changed feed <= 0.5x the floor's", "not measured", None, [])
    a = scs.get("A") if scs.get("A") and "floor" in scs["A"].results else b
    if a and "daemon" in a.results and "floor" in a.results:
        d, f = figures(a, "daemon"), figures(a, "floor")
        r = ratio(d.get("unchanged.cpu1k"), f.get("unchanged.cpu1k"))
        line(f"G3 unchanged pass (304s, identical bodies): daemon CPU per poll <= {GOAL_UNCHANGED_CPU}x the floor's",
             f"scenario {a.key}, {a.feeds:,} feeds: daemon {fmt(d.get('unchanged.cpu1k'), '.3f', 0)} ms, floor "
             f"{fmt(f.get('unchanged.cpu1k'), '.3f', 0)} ms, ratio {fmt(r, '.2f', 0)}",
             None if r is None else r <= GOAL_UNCHANGED_CPU,
             invalid(a, [("daemon", "unchanged"), ("floor", "unchanged")]))
        if a is not b and b and "floor" in b.results:
            rb = ratio(figures(b, "daemon").get("unchanged.cpu1k"), figures(b, "floor").get("unchanged.cpu1k"))
            if rb is not None:
                out.append(f"         (for information, scenario B at {b.feeds:,} feeds: ratio {rb:.2f})")
    else:
        line("G3 unchanged pass daemon CPU per poll <= 1.1x the floor's", "not measured", None, [])
    c = scs.get("C")
    if c and "daemon" in c.peaks:
        p = c.peaks["daemon"]
        tree = p.get("peak_tree_pss_mb") if p.get("pss_samples") else None
        line(f"G4 peak PSS of the daemon and every child < {GOAL_PSS_MB:.0f} MB with 50,000 feeds",
             f"{fmt(tree, '.0f', 0)} MB (sampled every 0.5 s, {p.get('pss_samples', 0)} samples: daemon process "
             f"VmHWM {p['peak_rss_mb']:.0f} MB RSS; children {p.get('peak_workers_pss_mb', 0):.0f} MB PSS, "
             f"largest one {p.get('peak_one_worker_mb', 0):.0f} MB RSS)",
             None if tree is None else tree < GOAL_PSS_MB,
             invalid(c, [("daemon", "baseline"), ("daemon", "unchanged")]) + ([] if tree else ["no PSS sample"]),
             size(c, 50_000))
    else:
        line("G4 peak PSS of the daemon and every child < 300 MB with 50,000 feeds", "not measured", None, [])
    return out, met


def report(scs: dict[str, Scenario], args: argparse.Namespace, started: float,
           skipped: dict[str, str]) -> tuple[str, int, bool]:
    lines = ["", "=" * 100, "POLLING BENCHMARK", "=" * 100,
             f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; farm: {args.hosts} hosts, "
             f"{args.etag_share:.0%} of feeds with ETag/Last-Modified, per-host latency {args.latency_ms} ms, "
             f"seed {args.seed}",
             "client settings (daemon and floor): the daemon's [poll] concurrency and per_host defaults, "
             "conditional GET, sha256 body skip; floor parses with feedparser, sanitize_html=False, "
             "resolve_relative_uris=False",
             "CPU = contender process CPU (+ daemon worker processes' CPU); farm CPU is not counted. "
             "The machine is shared and noisy: read the ratios (side by side, same run), not the absolutes"]
    for key, why in skipped.items():
        lines.append(f"SKIPPED {key}: {why}")
    for sc in scs.values():
        lines += ["", f"--- {sc.key}: {sc.title}  ({sc.seconds:.0f} s)", *detail_table(sc), ""]
        if sc.key != "C":
            lines += summary_table(sc, ["daemon", "floor", "rss2email"])
        lines += [f"  note: {n}" for n in sc.notes]
        if sc.farm:
            lines += [f"  farm counters {k}: {v}" for k, v in sc.farm.items()]
    check_lines, bad = checks_table(scs)
    goal_lines, met = goals(scs)
    # a scenario that stopped (a contender did not start, the farm died) measured nothing: its
    # goals read "not measured", and the verdict must not say that every check passed
    broken = [sc.key for sc in scs.values() if any(n.startswith("FAILED") for n in sc.notes)]
    verdict = ", ".join(filter(None, [
        f"scenario {', '.join(broken)} FAILED (see its note): nothing measured there" if broken else "",
        "checks FAILED: the figures above prove nothing" if bad else "" if broken else "all checks passed"]))
    lines += ["", f"CHECKS (did each contender do the work? {bad} failed)", *check_lines,
              "", "GOALS", *goal_lines, "",
              f"VERDICT: {verdict}; goals {'met' if met and not broken else 'NOT met'}", "",
              f"total {time.perf_counter() - started:.0f} s. Reproduce with:",
              "  " + shlex.join([".venv/bin/python", "bench/polling/run.py", *sys.argv[1:]]),
              f"  (or: make bench-polling ARGS={shlex.quote(' '.join(sys.argv[1:]))})"]
    return "\n".join(lines), bad, met


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 500 / 100 / 2,000 feeds (about 2 minutes)")
    ap.add_argument("--feeds", type=int, help="scenario A feeds (default 10,000; quick 500)")
    ap.add_argument("--compare-feeds", type=int, help="scenario B feeds, with rss2email (default 1,000; quick 100)")
    ap.add_argument("--rss-feeds", type=int, help="scenario C small feeds (default 50,000; quick 2,000)")
    ap.add_argument("--changed", type=float, default=0.1, help="share of feeds changed in a mixed pass")
    ap.add_argument("--repeat", type=int, help="mixed passes in A, median reported (default 2; quick 1)")
    ap.add_argument("--unchanged", type=int, help="unchanged passes in A, median reported (default 3; quick 1):\n"
                                                   "G3's figure; one pass moved by 0.1 from run to run")
    ap.add_argument("--first-passes", type=int, help="daemon first passes in B, each by a fresh daemon on a fresh\n"
                                                      "database, median reported (default 3; quick 1): G1's and G2's\n"
                                                      "figure; one pass moved G1 from 19.1x to 22.9x within an hour")
    ap.add_argument("--changed-at-scale", action="store_true", help="also run a 100%%-changed pass in A")
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--etag-share", type=float, default=0.7)
    ap.add_argument("--latency-ms", default="5,30", help="LO,HI per-host delay range")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-rss2email", action="store_true")
    ap.add_argument("--skip-50k", action="store_true", help="skip scenario C")
    ap.add_argument("--only", default="ABC", help="scenarios to run, e.g. A or BC")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs, maildir)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--sabotage", action="store_true",
                    help="self-test: the daemon's config leaves the farm out of allow_private (issue 16's\n"
                         "bug); its polls are refused, and the run must end in FAIL lines and exit 1")
    args = ap.parse_args()
    if args.sabotage:
        global DAEMON_EXTRA
        DAEMON_EXTRA = ("--no-allow-farm",)
    q = args.quick
    n_a = args.feeds or (500 if q else 10_000)
    n_b = args.compare_feeds or (100 if q else 1_000)
    n_c = args.rss_feeds or (2_000 if q else 50_000)
    repeat = args.repeat or (1 if q else 2)
    unchanged = args.unchanged or (1 if q else 3)
    first_passes = args.first_passes or (1 if q else 3)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-polling-"))
    log(f"work folder {workdir}")
    skipped: dict[str, str] = {}
    why = daemon_available()
    if why:
        skipped["daemon"] = why
        log(f"daemon contender skipped: {why}")
    scs: dict[str, Scenario] = {}
    contenders = ([] if why else ["daemon"]) + ["floor"]

    def scenario_a(sc: Scenario, wd: Path) -> None:
        farm = Farm(wd, n_a, args)
        try:
            phases = [("baseline", None)] + [("unchanged", None)] * unchanged + [("mixed", args.changed)] * repeat
            if args.changed_at_scale:
                phases.append(("changed", 1.0))
            lockstep(sc, farm, wd, phases, contenders, None, floor_parses_baseline=False)
        finally:
            farm.stop()

    def scenario_b(sc: Scenario, wd: Path) -> None:
        farm = Farm(wd, n_b, args)
        try:
            r2e = None if args.skip_rss2email else RSS2Email(wd, farm.urls())
            if r2e:
                sc.notes.append(f"rss2email: {shlex.join(r2e.command(False))} (baseline pass adds --no-send); "
                                "maildir delivery; it fetches feeds one after another")
            phases = [("baseline", None), ("unchanged", None), ("mixed", args.changed), ("changed", 1.0)]
            lockstep(sc, farm, wd, phases, contenders, r2e, floor_parses_baseline=True,
                     first_passes=first_passes if "daemon" in contenders else 1)
        finally:
            farm.stop()

    def scenario_c_(sc: Scenario, wd: Path) -> None:
        farm = Farm(wd, n_c, args, small=True)
        try:
            scenario_c(sc, farm, wd)
        finally:
            farm.stop()

    plan = [("A", f"{n_a:,} feeds: daemon vs floor", n_a, scenario_a),
            ("B", f"{n_b:,} feeds: daemon vs floor" + ("" if args.skip_rss2email else " vs rss2email"), n_b,
             scenario_b),
            ("C", f"{n_c:,} small feeds (2-5 KB, 5 items): daemon.once() memory", n_c, scenario_c_)]
    failed = False
    for key, title, n, fn in plan:
        if key not in args.only or (key == "C" and (args.skip_50k or why)):
            continue
        sc = scs[key] = Scenario(key, title, n)
        t0 = time.perf_counter()
        (workdir / key).mkdir()
        try:
            fn(sc, workdir / key)
        except Exception as e:  # report it, keep the work folder, go on with the next scenario
            failed = True
            sc.notes.append(f"FAILED: {type(e).__name__}: {e}")
            log(f"{key} failed: {type(e).__name__}: {e}")
        sc.seconds = time.perf_counter() - t0
    text, bad, met = report(scs, args, started, skipped)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({k: vars(v) for k, v in scs.items()}, indent=1, default=str))
    if bad:
        log(f"FAIL: {bad} contender pass(es) did not do their work; see CHECKS")
    if args.keep or failed or bad:
        log(f"work folder kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed or bad else 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
