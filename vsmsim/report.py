"""What a comparison or a run answers, as a fixed-width text table or a self-contained HTML page.

Both show the scenario's question (``question``), its headline metrics (``headline``, or
the default latencies and the VTL0 tax) with units, the sample size behind every
percentile, and, with replications, the 95 % interval of every value and the paired
differences against the first design. Plain text (``ascii``) survives a mailing-list post;
``report.html`` embeds its plots, so it can be sent as one file.
"""

from __future__ import annotations

import base64
import html
import json
import shlex
import sys
from pathlib import Path

import pandas as pd

from . import names
from ._version import __version__
from .atomic import atomic_write
from .labels import format_interval, format_value, metric_label, sample_metric
from .sweep.task import metric_column

#: Headline when the scenario names none: what most questions are about.
DEFAULT_HEADLINE = ("delivery_p50", "delivery_p99", "roundtrip_p50", "vtl0_tax")


def _table(results) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    """(values by (metric, kind, vtl, unit) x design, intervals long or None, replications)."""
    if hasattr(results, "intervals"):
        values = results.summary()
        reps = int(getattr(results, "replications", 1))
        return values, (results.intervals() if reps > 1 else None), reps
    from .plots.style import as_results

    res = as_results(results)
    frames = [r.summary().set_index(["metric", "kind", "vtl", "unit"])["value"].rename(d)
              for d, r in res.items()]
    return pd.concat(frames, axis=1), None, 1


def headline_rows(values: pd.DataFrame, headline=None) -> list[tuple]:
    """The (metric, kind, vtl, unit) rows of *values* that *headline* names, in its order.

    An entry is a sweep column (``delivery_p99[timer,vtl1]``) or a bare metric
    (``delivery_p99``: every kind and VTL it has). Unknown entries are skipped.
    """
    headline = list(headline or DEFAULT_HEADLINE)
    keys = list(values.index)
    rows = []
    for h in headline:
        for key in keys:
            m, k, v, _u = key
            if (h == m or h == metric_column(str(m), str(k), int(v))) and key not in rows:
                rows.append(key)
    # The rows of one (kind, VTL) together, so its percentiles share one sample-size row.
    groups = list(dict.fromkeys((k, v) for _m, k, v, _u in rows))
    return sorted(rows, key=lambda r: groups.index((r[1], r[2])))


def _n_rows(values: pd.DataFrame, rows: list[tuple]) -> dict:
    """For each percentile row, the sample-size row of its family (None if it has none)."""
    out = {}
    for m, k, v, _u in rows:
        nm = sample_metric(str(m))
        hit = [key for key in values.index if key[0] == nm and key[1] == k and key[2] == v]
        out[(m, k, v)] = hit[0] if hit else None
    return out


def _cells(values, intervals, rows, ascii):
    designs = list(values.columns)
    iv = None
    if intervals is not None and len(intervals):
        iv = intervals.set_index(["metric", "kind", "vtl", "design"])
    nrow = _n_rows(values, rows)
    out = []
    for i, key in enumerate(rows):
        m, k, v, u = key
        cells = []
        for d in designs:
            if iv is not None and (m, k, v, d) in iv.index:
                r = iv.loc[(m, k, v, d)]
                cells.append(format_interval(r["mean"], r["ci_low"], r["ci_high"], u, ascii))
            else:
                cells.append(format_value(values.at[key, d], u, ascii))
        out.append((metric_label(str(m), str(k), int(v)), cells))
        nk = nrow.get((m, k, v))
        after = nrow.get(tuple(rows[i + 1][:3])) if i + 1 < len(rows) else None
        if nk is None or nk == after:  # one sample-size row under each group of percentiles
            continue
        nc = []
        for d in designs:
            if iv is not None and (nk[0], k, v, d) in iv.index:
                nc.append(f"n={iv.loc[(nk[0], k, v, d)]['mean']:,.0f}")
            else:
                val = values.at[nk, d]
                nc.append("-" if val != val else f"n={val:,.0f}")
        out.append(("  samples (n per run)", nc))
    return designs, out


def text_table(results, headline=None, ascii: bool = False) -> str:
    """A fixed-width table: one row per headline metric, one column per design.

    With replications each value is ``mean ±half-width`` of its 95 % interval; under each
    percentile its sample size (``n`` per run). *ascii* avoids every non-ASCII character.
    """
    values, intervals, _reps = _table(results)
    rows = headline_rows(values, headline)
    designs, lines = _cells(values, intervals, rows, ascii)
    if not lines:
        return "(no headline metric in the results)"
    w0 = max(len(label) for label, _ in lines)
    ws = [max(len(d), *(len(c[i]) for _, c in lines)) for i, d in enumerate(designs)]
    head = f"{'':{w0}}  " + "  ".join(f"{d:>{w}}" for d, w in zip(designs, ws))
    body = [f"{label:{w0}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, ws))
            for label, cells in lines]
    text = "\n".join([head, "-" * len(head), *body])
    return _ascii(text) if ascii else text


def differences_text(cmp, headline=None, ascii: bool = False) -> str:
    """Paired differences against the first design for the headline metrics, one per line."""
    if int(getattr(cmp, "replications", 1)) < 2:
        return ("one run per design: no intervals, so no design is called better; "
                "run with --replications 5 (or more) to tell designs apart from noise")
    d = cmp.differences()
    if not len(d):
        return ""
    rows = headline_rows(cmp.summary(), headline)
    lines = [f"paired differences vs {d['reference'].iloc[0]} over {cmp.replications} "
             f"replications (same arrivals; 95 % intervals; better/worse only when the "
             f"interval excludes 0):"]
    idx = d.set_index(["metric", "kind", "vtl", "unit"])
    for key in rows:
        if key not in idx.index:
            continue
        sub = idx.loc[[key]]
        for _, r in sub.iterrows():
            lines.append(f"  {metric_label(str(key[0]), str(key[1]), int(key[2]))}: "
                         f"{r['design']} "
                         f"{format_interval(r['mean_diff'], r['ci_low'], r['ci_high'], key[3], ascii)}"
                         f" -> {r['verdict']}")
    text = "\n".join(lines)
    return _ascii(text) if ascii else text


def header_text(scenario: dict, designs, replications: int = 1) -> list[str]:
    """The lines above a table: the question, the run's facts."""
    sc = scenario
    q = sc.get("question") or sc.get("description") or ""
    lines = [f"{sc.get('name', 'scenario')}: {q}" if q else str(sc.get("name", "scenario"))]
    vm = sc.get("vm", {})
    costs = sc.get("costs", {})
    prof = costs.get("profile", "default") if isinstance(costs, dict) else costs
    lines.append(f"seed {sc.get('seed')}, {format_value(sc.get('duration', 0), 'ns')} "
                 f"({format_value(sc.get('warmup', 0), 'ns')} warmup), {vm.get('vps')} VPs x "
                 f"{vm.get('vtls')} VTLs, costs {prof}, vsmsim {__version__}, "
                 f"{replications} replication{'s' if replications != 1 else ''}")
    return lines


def comparison_text(cmp, ascii: bool = False) -> str:
    """Header, table and differences of a Comparison, as :func:`text_table` writes them."""
    sc = cmp.scenario.resolved() if hasattr(cmp.scenario, "resolved") else cmp.scenario
    reps = int(getattr(cmp, "replications", 1))
    head = header_text(sc, cmp.designs, reps)
    if reps > 1:
        head.append(f"values: mean ±half-width of the 95 % interval over {reps} replications; "
                    f"n: samples behind each percentile, per run")
    parts = ["\n".join(head), text_table(cmp, sc.get("headline"), ascii),
             differences_text(cmp, sc.get("headline"), ascii)]
    text = "\n\n".join(p for p in parts if p)
    return _ascii(text) if ascii else text


def _ascii(text: str) -> str:
    """*text* with µ, ± and every other non-ASCII character spelled in ASCII."""
    text = text.replace("µs", "us").replace("±", "+-").replace("µ", "u")
    return text.encode("ascii", "replace").decode()


# ---------------------------------------------------------------------- HTML
_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}tr.n td{color:#777;font-size:11px}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}img{max-width:100%}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}"""


def _html_table(cmp, headline) -> str:
    values, intervals, _ = _table(cmp)
    designs, lines = _cells(values, intervals, headline_rows(values, headline), False)
    out = ["<table><tr><th></th>" + "".join(f"<th>{html.escape(d)}</th>" for d in designs)
           + "</tr>"]
    for label, cells in lines:
        cls = ' class="n"' if label.startswith("  samples") else ""
        out.append(f"<tr{cls}><td>{html.escape(label.strip())}</td>"
                   + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def report_html(cmp, plots=(), command: str | None = None) -> str:
    """The text of a self-contained ``report.html`` for Comparison *cmp*.

    *plots*: PNG paths, embedded as data URIs. *command*: the command line that made it
    (default: this process's ``sys.argv``).
    """
    sc = cmp.scenario.resolved()
    command = command if command is not None else " ".join(shlex.quote(a) for a in sys.argv)
    first = next(iter(cmp.results.values()), None)
    costs = first.meta.get("costs", {}) if first is not None else {}
    head = header_text(sc, cmp.designs, cmp.replications)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>vsmsim: "
             f"{html.escape(sc.get('name', ''))}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(head[0])}</h1>", f"<p>{html.escape(head[1])}</p>",
             f"<p>designs: {html.escape(', '.join(cmp.designs))}</p>",
             "<h2>Answer</h2>", _html_table(cmp, sc.get("headline")),
             f"<pre>{html.escape(differences_text(cmp, sc.get('headline')))}</pre>"]
    if cmp.failures:
        parts.append("<h2>Failed</h2><pre>" + html.escape("\n".join(
            f"{k}: {v.strip().splitlines()[-1]}" for k, v in cmp.failures.items())) + "</pre>")
    for p in plots:
        p = Path(p)
        if p.suffix.lower() != ".png" or not p.is_file():
            continue
        data = base64.b64encode(p.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(p.stem)}</h2><img alt='{html.escape(p.stem)}' "
                     f"src='data:image/png;base64,{data}'>")
    parts += ["<h2>Scenario (resolved)</h2>",
              f"<pre>{html.escape(json.dumps(sc, indent=2, default=str))}</pre>",
              "<h2>Cost profile</h2>",
              f"<pre>{html.escape(json.dumps(costs, indent=2, default=str))}</pre>",
              "<h2>Provenance</h2>",
              f"<p>seed {sc.get('seed')}, vsmsim {__version__}</p>",
              f"<pre>{html.escape(command)}</pre>", "</body></html>"]
    return "\n".join(parts)


def write_report(cmp, out_dir, plots=(), command: str | None = None) -> Path:
    """Write ``report.html`` (:func:`report_html`) into *out_dir*, atomically; its path."""
    path = Path(out_dir) / names.REPORT
    text = report_html(cmp, plots, command)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def design_text(design, profile=None) -> str:
    """A design's paths as a readable table: one line per step, with its mean ns.

    *profile*: a CostProfile (default: the built-in ``default``) for the ns column.
    """
    from .costs import load_profile

    prof = profile or load_profile("default")
    lines = [f"{design.name}: {design.description}",
             "capabilities: " + ", ".join(f"{k}={'yes' if v else 'no'}"
                                          for k, v in design.capabilities.items()),
             f"ns: mean of profile {prof.name!r} (N = VPs, V = VTLs, as the run resolves them)",
             ""]
    w = max((len(st.cost) for steps in design.paths.values() for st in steps), default=8)
    for path, steps in design.paths.items():
        total = sum(prof.mean(st.cost) * (st.times if isinstance(st.times, int) else 1)
                    for st in steps)
        lines.append(f"{path}  ({len(steps)} steps, {total:,.0f} ns with N = V = 1)")
        if not steps:
            lines.append("    (no steps)")
        for st in steps:
            cnt = ", ".join(f"{k} +{a}" for k, a in st.count) or "-"
            times = f"x{st.times}" if st.times != 1 else ""
            ns = prof.mean(st.cost)
            host = f"  [host: {st.host_role}]" if st.host_role else ""
            lines.append(f"    {st.cost:{w}} {times:>5} {st.payer:8} {ns:>8,.0f} ns  {cnt}{host}")
    return "\n".join(lines)


# ---------------------------------------------------------------- scenario scripts
def scenario_args(doc: str, argv=None, replications: int = 3):
    """The command line of a ``scenarios/q*.py`` script: ``--replications N``, ``--out``,
    ``--quick`` (a short run for tests and a first look). Prints the question (the
    docstring's first line) and what the answer depends on, and returns the arguments."""
    import argparse

    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                epilog=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replications", type=int, default=replications, metavar="N",
                   help=f"replications per design (default {replications}): 95 %% intervals")
    p.add_argument("--out", default="results", help="where the plots and tables go")
    p.add_argument("--quick", action="store_true", help="short runs, fewer points")
    args = p.parse_args(argv)
    print(question_text(doc))
    return args


def question_text(doc: str) -> str:
    """The question (first line) and the "It depends on" paragraph of a scenario docstring."""
    lines = doc.strip().splitlines()
    text = " ".join(lines)
    dep = ""
    if "It depends on:" in text:
        dep = text.split("It depends on:", 1)[1].split("    python ")[0].strip()
        dep = " ".join(dep.split())
    return lines[0] + (f"\nIt depends on: {dep}" if dep else "")


def host_text(res) -> str:
    """One paragraph on a hosted run's host layer: CPUs, steal, switches, utilisation."""
    h = res.scenario["host"]
    cpus, th, rz = res.cpus, res.threads, res.residency
    total = float(rz["total_ns"].sum()) or 1.0
    vcpu = th[th["vp"] >= 0]
    hw = ""
    if res.interrupts is not None and "host_wait_ns" in res.interrupts and len(res.interrupts):
        w = res.interrupts["host_wait_ns"]
        hw = (f"; waiting for a CPU: {(w > 0).mean():.0%} of interrupts, "
              f"{w.mean() / 1e3:.1f} us on average")
    return (f"host: {len(cpus)} CPUs, {h['placement']} placement, {h['policy']} policy, "
            f"{len(vcpu)} vCPU threads"
            f"{f' + {len(th) - len(vcpu)} background' if len(th) > len(vcpu) else ''}; "
            f"CPU utilisation {cpus['utilisation'].mean():.0%} (switching "
            f"{cpus['switch_ns'].sum() / max(res.measured_ns * len(cpus), 1):.1%}); "
            f"steal {rz['steal_ns'].sum() / total:.1%} of VP time; "
            f"{res.counters['context_switches']:,} context switches, "
            f"{res.counters['migrations']:,} migrations, "
            f"{res.counters['halt_poll_hits']:,} halt-poll hits{hw}")


def rep_values(cmp, design: str, metric: str, kind: str = "", vtl: int = -1):
    """*metric*'s value in every replication of *design* (a numpy array, NaN if absent)."""
    import numpy as np

    r = cmp.runs
    sel = r[(r["design"] == design) & (r["metric"] == metric) & (r["kind"] == kind)
            & (r["vtl"] == vtl)]
    out = np.full(cmp.replications, np.nan)
    for rep, v in zip(sel["replication"], sel["value"]):
        out[int(rep)] = float(v)
    return out


def ci_text(values, unit: str, ascii: bool = False) -> str:
    """``mean ±half unit`` over replications (``mean unit`` with one)."""
    from .stats import mean_interval

    _n, mean, _sd, lo, hi = mean_interval(values)
    return format_interval(mean, lo, hi, unit, ascii)


def fixed_table(header: list[str], rows: list[list[str]]) -> str:
    """Rows of cells as a right-aligned fixed-width table (first column left-aligned)."""
    ws = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda cells: "  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}"  # noqa: E731
                                   for i, (c, w) in enumerate(zip(map(str, cells), ws)))
    line = fmt(header)
    return "\n".join([line, "-" * len(line), *map(fmt, rows)])
