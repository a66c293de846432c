"""Compare SSE streaming from a bare ASGI app, sse-starlette, a naive Django view and dualstream.

    python benchmarks/run.py [--quick] [--only A,D] [--runs N] [--c-runs N] [--servers bare-asgi,dualstream]

Each server runs in its own uvicorn process pinned to one core; this client runs on the other.
Everything targets 127.0.0.1, is bounded in time, and stops its servers on exit or Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import run_async, scenarios
from benchmarks.procs import ROOT, SERVERS, ServerSpec, raise_nofile
from benchmarks.report import machine_info

SCENARIOS = "ABCDEF"


def available(spec: ServerSpec) -> str | None:
    """Why ``spec`` cannot run here, or None."""
    for module in spec.needs:
        if module == "dualstream":
            code = "import django; from django.conf import settings; settings.configure(); from dualstream import DualModeView"
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
            if r.returncode:
                return "dualstream is not importable: " + (r.stderr.strip().splitlines() or ["?"])[-1]
        elif importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -r benchmarks/requirements.txt)"
    return None


def cores() -> tuple[int | None, int | None]:
    """(client core, server core): the first two CPUs this process may use, or no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


async def main(args: argparse.Namespace) -> None:
    client_core, server_core = cores()
    if args.no_middleware:
        os.environ["BENCH_DJANGO_MIDDLEWARE"] = "none"  # read by servers/django_settings.py
    if args.gc_threshold:
        os.environ["BENCH_GC_THRESHOLD"] = args.gc_threshold  # read by servers/gcstats.py
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    nofile = raise_nofile()
    runs = args.runs or (2 if args.quick else 5)
    cfg = (scenarios.Config.quick if args.quick else scenarios.Config.full)(runs, args.c_runs, server_core)
    wanted = {s.strip() for s in args.servers.split(",")} if args.servers else None
    specs: list[ServerSpec] = []
    skipped: list[str] = []
    for spec in SERVERS:
        if wanted is not None and spec.name not in wanted:
            continue
        reason = available(spec)
        if reason:
            skipped.append(f"{spec.name}: skipped, {reason}")
        else:
            specs.append(spec)

    print(machine_info())
    print(
        f"pinning:  server on CPU {server_core}, client on CPU {client_core}; open-file limit {nofile}; "
        f"{runs} run(s) per figure (medians; C: {cfg.c_runs}), {'quick' if args.quick else 'full'} sizes"
    )
    if args.no_middleware:
        print("note:     both Django servers run without middleware (--no-middleware)")
    if args.gc_threshold:
        print(f"note:     every server runs with gc.set_threshold({args.gc_threshold}) (--gc-threshold)")
    for line in skipped:
        print(f"note:     {line}")
    print("spread:   (max - min) / median over the runs of the column to its left")
    print(flush=True)

    only = [c for c in (args.only.upper().replace(",", "") if args.only else SCENARIOS) if c in SCENARIOS]
    t_start = time.perf_counter()
    shared = [c for c in only if c != "C"]
    servers = await scenarios.start(specs, server_core) if shared else []
    try:
        for c in only:
            t0 = time.perf_counter()
            if c == "C":
                text = await scenarios.scenario_c(specs, cfg)
            else:
                text = await getattr(scenarios, f"scenario_{c.lower()}")(servers, cfg)
            print(text)
            print(f"  ({time.perf_counter() - t0:.0f} s)\n", flush=True)
    finally:
        for s in servers:
            s.stop()
    print(f"total: {time.perf_counter() - t_start:.0f} s")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer runs, smaller sizes (about a minute or two)")
    p.add_argument("--only", help=f"scenarios to run, e.g. A,D (default: all of {SCENARIOS})")
    p.add_argument("--runs", type=int, help="runs per figure (default 5, quick 2)")
    p.add_argument(
        "--c-runs", type=int, default=1, help="runs of C, which opens up to 10,000 streams per server (default 1)"
    )
    p.add_argument("--no-middleware", action="store_true", help="run both Django servers without any middleware")
    p.add_argument("--gc-threshold", help="gc.set_threshold() arguments for every server, e.g. 700,10,100")
    p.add_argument("--servers", help="comma-separated subset of: " + ", ".join(s.name for s in SERVERS))
    return p.parse_args(argv)


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        run_async(main(parse()))
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
