"""Medians over runs, tables with ratios to the baseline, and the machine/version header."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

from .procs import ROOT

Metrics = dict[str, float]


def summarize(runs: Sequence[Metrics]) -> tuple[Metrics, Metrics]:
    """Per metric: the median over runs, and the spread ((max - min) / median, in %; none for one run)."""
    keys = runs[0].keys()
    medians = {k: statistics.median(r[k] for r in runs) for k in keys}
    spread: Metrics = {}
    if len(runs) < 2:
        return medians, spread
    for k in keys:
        values = [r[k] for r in runs]
        m = medians[k]
        spread[k] = (max(values) - min(values)) / abs(m) * 100 if m else 0.0
    return medians, spread


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: Callable[[float], str] = lambda v: f"{v:,.1f}"
    ratio: bool = False  # add a "× naive" column next to it
    spread: bool = False  # add a "spread" column next to it


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def fmt2(v: float) -> str:
    return f"{v:,.2f}"


def fmt3(v: float) -> str:
    return f"{v:,.3f}"


def table(
    title: str,
    columns: Sequence[Column],
    rows: dict[str, tuple[Metrics, Metrics]],
    baseline: str,
    notes: Sequence[str] = (),
) -> str:
    """Render rows (server -> (medians, spreads)) as a fixed-width table."""
    headers = ["server"]
    for c in columns:
        headers.append(c.header)
        if c.ratio:
            headers.append("× naive")
        if c.spread:
            headers.append("spread")
    body: list[list[str]] = []
    base = rows.get(baseline, ({}, {}))[0]
    for name, (med, spr) in rows.items():
        line = [name]
        for c in columns:
            v = med.get(c.key)
            line.append("-" if v is None else c.fmt(v))
            if c.ratio:
                b = base.get(c.key)
                line.append(f"{v / b:.2f}" if v is not None and b else "-")
            if c.spread:
                s = spr.get(c.key)
                line.append("-" if s is None else f"{s:.0f}%")
        body.append(line)
    widths = [max(len(r[i]) for r in [headers, *body]) for i in range(len(headers))]
    out = [title, "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for r in body:
        out.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    out.extend(f"  {n}" for n in notes)
    return "\n".join(out)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    rev = _git("rev-parse", "--short", "HEAD") or "no commit"
    dirty = _git("status", "--porcelain", "--", "dualstream")
    packages = ["Django", "uvicorn", "uvloop", "httptools", "starlette", "sse-starlette", "anyio"]
    lines = [
        f"machine:  {cpu}, {os.cpu_count()} cores, {mem_kib / 2**20:.1f} GiB, {platform.system()} {platform.release()}",
        f"load:     {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at start",
        f"python:   {platform.python_version()} ({platform.python_implementation()})",
        "packages: " + ", ".join(f"{p} {_version(p)}" for p in packages),
        f"dualstream source: {ROOT / 'dualstream'} at git {rev}" + (" + uncommitted changes" if dirty else ""),
    ]
    return "\n".join(lines)
