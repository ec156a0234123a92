"""Polling benchmark: our daemon's polling pipeline against a minimal floor and rss2email, on a
local feed farm, side by side in one run. See README.md beside this file.

    .venv/bin/python bench/polling/run.py [--quick] [--feeds 10000] [--skip-rss2email] [--skip-50k] ...

Scenarios (each on its own farm process, each contender in its own process):
  A  --feeds (10,000) feeds: daemon vs floor; passes baseline, unchanged, mixed (--changed share)
  B  --compare-feeds (1,000) feeds: daemon vs floor vs rss2email; baseline, unchanged, mixed, changed
  C  --rss-feeds (50,000) small feeds: daemon.once() baseline + unchanged; peak RSS
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
GOAL_CPU_RATIO, GOAL_SPEEDUP, GOAL_RSS_MB = 1.25, 20.0, 300.0
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

    def advance(self, share: float, seed: int) -> int:
        return self._call(f"/advance?share={share}&seed={seed}", post=True)["changed"]

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


class Sampler(threading.Thread):
    """Samples the memory of a process's descendants (the daemon's workers and forkserver):
    the peak of their RSS summed, of their PSS summed (shared pages counted once overall),
    and the largest single RSS. Runs in this process, so its CPU is not a contender's."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_children = self.peak_children_pss = self.peak_worker = 0.0
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
                    info = k.memory_full_info()
                except psutil.Error:
                    continue
                rss.append(info.rss / 2**20)
                pss.append(getattr(info, "pss", info.rss) / 2**20)
            if rss:
                self.peak_children = max(self.peak_children, sum(rss))
                self.peak_children_pss = max(self.peak_children_pss, sum(pss))
                self.peak_worker = max(self.peak_worker, max(rss))

    def stop(self) -> None:
        self._halt.set()
        self.join(2)

    def peaks(self) -> dict:
        return {"peak_workers_mb": self.peak_children, "peak_workers_pss_mb": self.peak_children_pss,
                "peak_one_worker_mb": self.peak_worker}


class Contender:
    """A contender process speaking the line protocol of contenders.py."""

    def __init__(self, name: str, mode: str, workdir: Path, urls_file: Path):
        self.name = name
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workdir / "stderr.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [PY, str(HERE / "contenders.py"), mode, "--workdir", str(self.workdir), "--urls", str(urls_file)],
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
                "exit": proc.returncode, "mails": self.mails() - before, "complaints": len(errors),
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


def lockstep(sc: Scenario, farm: Farm, workdir: Path, phases: list[tuple[str, float | None]],
             contenders: list[str], r2e: RSS2Email | None) -> None:
    """Every contender polls the same farm state in turn; the farm advances between phases.
    The order of contenders alternates from phase to phase so that neither always goes first."""
    urls = farm.urls()
    urls_file = workdir / "urls.txt"
    urls_file.write_text("\n".join(urls))
    procs: dict[str, Contender] = {}
    try:
        for name in contenders:
            log(f"{sc.key}: starting {name} ({len(urls)} feeds)")
            procs[name] = Contender(name, name, workdir, urls_file)
        order = list(procs) + (["rss2email"] if r2e else [])
        for k, (phase, share) in enumerate(phases):
            if share:
                changed = farm.advance(share, seed=1000 * (ord(sc.key) - 64) + k)
                log(f"{sc.key}: farm advanced {changed} feeds ({share:.0%})")
            turn = order if k % 2 == 0 else order[::-1]
            for name in turn:
                farm.reset_stats()
                if name == "rss2email":
                    assert r2e is not None
                    res = r2e.run_pass(phase, len(urls), no_send=(phase == "baseline"))
                else:
                    verb = "prime" if (name == "floor" and phase == "baseline") else "pass"
                    res = procs[name].run_pass(phase, verb)
                stats = farm.stats()
                res["farm"] = {k2: stats[k2] for k2 in ("requests", "200", "304", "404", "bytes")}
                sc.results.setdefault(name, {}).setdefault(phase, []).append(res)
                log(f"{sc.key}: {name:9s} {phase:9s} wall {res['wall']:7.2f}s cpu {res['cpu']:7.2f}s "
                    f"status {res.get('status', res.get('how'))} farm 200={stats['200']} 304={stats['304']}")
        for name, proc in procs.items():
            sc.peaks[name] = proc.quit()
        if r2e:
            sc.peaks["rss2email"] = {"peak_rss_mb": r2e.peak_rss}
    finally:
        for proc in procs.values():
            if proc.proc.poll() is None:
                proc.proc.kill()


def scenario_c(sc: Scenario, farm: Farm, workdir: Path) -> None:
    urls_file = workdir / "urls.txt"
    urls_file.write_text("\n".join(farm.urls()))
    wd = workdir / "daemon"
    wd.mkdir(parents=True, exist_ok=True)
    base = [PY, str(HERE / "contenders.py")]
    log(f"C: registering {farm.feeds} feeds")
    t0 = time.perf_counter()
    out = subprocess.run([*base, "register", "--workdir", str(wd), "--urls", str(urls_file)], cwd=ROOT,
                         capture_output=True, text=True, env=NO_PROXY_ENV)
    if out.returncode:
        raise RuntimeError(f"register failed:\n{out.stderr[-3000:]}")
    sc.notes.append(f"registered {json.loads(out.stdout)['registered']} feeds with add_feeds() "
                    f"in {time.perf_counter() - t0:.1f}s (separate process)")
    log("C: daemon.once() baseline + unchanged in a fresh process")
    err = open(wd / "once.stderr.log", "w")
    proc = subprocess.Popen([*base, "once", "--workdir", str(wd), "--passes", "baseline,unchanged"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=err, text=True, env=NO_PROXY_ENV)
    sampler = Sampler(proc.pid)
    sampler.start()
    stdout, _ = proc.communicate()
    sampler.stop()
    err.close()
    if proc.returncode or not stdout.strip():
        raise RuntimeError(f"once failed:\n{(wd / 'once.stderr.log').read_text()[-3000:]}")
    res = json.loads(stdout.strip().splitlines()[-1])
    for p in res["passes"]:
        p["cpu"] = None
        sc.results.setdefault("daemon", {}).setdefault(p["pass"], []).append(p)
        log(f"C: once {p['pass']:9s} wall {p['wall']:7.2f}s status {p['status']} rss {p['peak_rss_mb_so_far']:.0f} MB")
    sc.peaks["daemon"] = {"peak_rss_mb": res["peak_rss_mb"], "ru_maxrss_mb": res["ru_maxrss_mb"], **sampler.peaks()}
    sc.farm["total"] = farm.stats()


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
    if "mixed.cpu1k" in out and out["mixed.cpu1k"] is not None:
        out["mixed.cpu_ms"] = out["mixed.cpu1k"]  # s per 1,000 polls == ms per poll
    out["rss"] = sc.peaks.get(name, {}).get("peak_rss_mb")
    out["rss_workers"] = sc.peaks.get(name, {}).get("peak_workers_pss_mb") if name == "daemon" else None
    return out


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
            ("changed.pps", "pps chg", ".0f"), ("unchanged.cpu1k", "CPUs/1k unch", ".2f"),
            ("changed.cpu1k", "CPUs/1k chg", ".2f"), ("mixed.cpu_ms", "CPUms/poll mix", ".3f"),
            ("rss", "RSS MB", ".0f"), ("rss_workers", "wrk PSS MB", ".0f")]
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


def goals(scs: dict[str, Scenario], args: argparse.Namespace) -> list[str]:
    out = []

    def line(goal: str, value: str, ok: bool | None, caveat: str = "") -> None:
        verdict = "n/a " if ok is None else "PASS" if ok else "FAIL"
        out.append(f"  [{verdict}] {goal}: {value}{caveat}")

    a = scs.get("A")
    if a and "daemon" in a.results and "floor" in a.results:
        d, f = figures(a, "daemon").get("mixed.cpu_ms"), figures(a, "floor").get("mixed.cpu_ms")
        r = ratio(d, f)
        caveat = "" if a.feeds == 10_000 else f"  (measured at {a.feeds} feeds; the goal is at 10,000)"
        line(f"G1 daemon CPU/poll <= {GOAL_CPU_RATIO}x floor at 10,000 feeds, 10% changed",
             f"daemon {fmt(d, '.3f', 0)} ms, floor {fmt(f, '.3f', 0)} ms, ratio {fmt(r, '.2f', 0)}",
             None if r is None else r <= GOAL_CPU_RATIO, caveat)
    else:
        line("G1 daemon CPU/poll within 1.25x floor at 10,000 feeds", "not measured", None)
    b = scs.get("B")
    if b and "daemon" in b.results and "rss2email" in b.results:
        d, r = figures(b, "daemon"), figures(b, "rss2email")
        s = ratio(r.get("baseline.wall"), d.get("baseline.wall"))
        caveat = "" if b.feeds == 1_000 else f"  (measured at {b.feeds} feeds; the goal is at 1,000)"
        line(f"G2 one pass over 1,000 feeds >= {GOAL_SPEEDUP:.0f}x faster (wall) than rss2email",
             f"first pass (fetch+parse all; rss2email `run --no-send`, daemon baseline): rss2email "
             f"{fmt(r.get('baseline.wall'), '.1f', 0)} s, daemon {fmt(d.get('baseline.wall'), '.1f', 0)} s, "
             f"speed-up {fmt(s, '.1f', 0)}x", None if s is None else s >= GOAL_SPEEDUP, caveat)
        for phase in ("unchanged", "mixed", "changed"):
            s2 = ratio(r.get(f"{phase}.wall"), d.get(f"{phase}.wall"))
            if s2 is not None:
                out.append(f"         (for information, `r2e run` {phase} pass: rss2email "
                           f"{fmt(r.get(f'{phase}.wall'), '.1f', 0)} s, daemon {fmt(d.get(f'{phase}.wall'), '.1f', 0)}"
                           f" s, speed-up {s2:.1f}x)")
        out.append("         (a pass that parses every feed is bound by feedparser's CPU on both sides: rss2email "
                   "uses one core, the daemon all of them, so its speed-up there is about cores x the "
                   "two parse costs' ratio, whatever the concurrency)")
    else:
        line("G2 1,000 feeds >= 20x faster than rss2email", "not measured", None)
    c = scs.get("C")
    if c and "daemon" in c.peaks:
        p = c.peaks["daemon"]
        caveat = "" if c.feeds == 50_000 else f"  (measured at {c.feeds} feeds; the goal is at 50,000)"
        line(f"G3 daemon peak RSS < {GOAL_RSS_MB:.0f} MB with 50,000 feeds",
             f"daemon process {p['peak_rss_mb']:.0f} MB (VmHWM; ru_maxrss {p.get('ru_maxrss_mb', 0):.0f} MB)",
             p["peak_rss_mb"] < GOAL_RSS_MB, caveat)
        out.append(f"         (not in that figure: its worker processes and forkserver, sampled every 0.5 s: "
                   f"{p.get('peak_workers_mb', 0):.0f} MB RSS summed, {p.get('peak_workers_pss_mb', 0):.0f} MB PSS "
                   f"summed, largest one {p.get('peak_one_worker_mb', 0):.0f} MB; daemon + workers by PSS "
                   f"~{p['peak_rss_mb'] + p.get('peak_workers_pss_mb', 0):.0f} MB)")
    else:
        line("G3 daemon peak RSS < 300 MB with 50,000 feeds", "not measured", None)
    return out


def report(scs: dict[str, Scenario], args: argparse.Namespace, started: float, skipped: dict[str, str]) -> str:
    lines = ["", "=" * 100, "POLLING BENCHMARK", "=" * 100,
             f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; farm: {args.hosts} hosts, "
             f"{args.etag_share:.0%} of feeds with ETag/Last-Modified, per-host latency {args.latency_ms} ms, "
             f"seed {args.seed}",
             "client settings (daemon and floor): concurrency 10, 2 per host, conditional GET, sha256 body skip",
             "CPU = contender process CPU (+ daemon worker processes' CPU); farm CPU is not counted"]
    for key, why in skipped.items():
        lines.append(f"SKIPPED {key}: {why}")
    for sc in scs.values():
        lines += ["", f"--- {sc.key}: {sc.title}  ({sc.seconds:.0f} s)", *detail_table(sc), ""]
        if sc.key != "C":
            lines += summary_table(sc, ["daemon", "floor", "rss2email"])
        lines += [f"  note: {n}" for n in sc.notes]
        if sc.farm:
            lines += [f"  farm counters {k}: {v}" for k, v in sc.farm.items()]
    lines += ["", "GOALS", *goals(scs, args), "",
              f"total {time.perf_counter() - started:.0f} s. Reproduce with:",
              "  " + shlex.join([".venv/bin/python", "bench/polling/run.py", *sys.argv[1:]]),
              f"  (or: make bench-polling ARGS={shlex.quote(' '.join(sys.argv[1:]))})"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 500 / 100 / 2,000 feeds")
    ap.add_argument("--feeds", type=int, help="scenario A feeds (default 10,000; quick 500)")
    ap.add_argument("--compare-feeds", type=int, help="scenario B feeds, with rss2email (default 1,000; quick 100)")
    ap.add_argument("--rss-feeds", type=int, help="scenario C small feeds (default 50,000; quick 2,000)")
    ap.add_argument("--changed", type=float, default=0.1, help="share of feeds changed in a mixed pass")
    ap.add_argument("--repeat", type=int, help="mixed passes in A, median reported (default 2; quick 1)")
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
    args = ap.parse_args()
    q = args.quick
    n_a = args.feeds or (500 if q else 10_000)
    n_b = args.compare_feeds or (100 if q else 1_000)
    n_c = args.rss_feeds or (2_000 if q else 50_000)
    repeat = args.repeat or (1 if q else 2)
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
            phases = [("baseline", None), ("unchanged", None)] + [("mixed", args.changed)] * repeat
            if args.changed_at_scale:
                phases.append(("changed", 1.0))
            lockstep(sc, farm, wd, phases, contenders, None)
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
            lockstep(sc, farm, wd, phases, contenders, r2e)
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
    print(report(scs, args, started, skipped))
    if args.json:
        args.json.write_text(json.dumps({k: vars(v) for k, v in scs.items()}, indent=1, default=str))
    if args.keep or failed:
        log(f"work folder kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
