"""Results of a run: tables, counters, residency, the summary, and saving/loading.

Tables (pandas DataFrames, times in ns of simulated time):

- ``interrupts``: one row per interrupt, VTL call and intercept (columns in docs/metrics.md,
  plus ``arrival_ns``: when the workload produced it, earlier than ``raised_ns`` when the
  sending context could not run and the send waited; ``resumed_ns``: when the calling VTL
  resumed after the return, for calls and intercepts; ``service_ns``: the handler's or
  service's CPU time);
- ``switches``: one row per VTL transition;
- ``residency``: per VP, ns spent in each VTL, in transitions, in other exits, halted;
- ``timeline``: per-VP state segments, only when ``record.timeline`` is on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import names
from ._version import __version__
from .atomic import atomic_dir
from .overload import overload

PERCENTILES = (("p50", 50), ("p99", 99), ("p99.9", 99.9))


#: Temporary stream directories -> how many live results use them.
_STREAM_USERS: dict[str, int] = {}


def _hold_stream(res, directory: str) -> None:
    """The streamed files of a run live in a temporary directory as long as a result made
    from that run does (Result.save copies them into the result's own directory)."""
    import weakref

    _STREAM_USERS[directory] = _STREAM_USERS.get(directory, 0) + 1
    res.__dict__["_stream_hold"] = weakref.finalize(res, _release_stream, directory)


def _stream_dir(meta: dict) -> str | None:
    """The temporary directory of a run's streamed files, or None."""
    files = meta.get("stream_files") or {}
    if not files:
        return None
    d = Path(next(iter(files.values()))).parent
    return str(d) if d.name.startswith(names.STREAM_PREFIX) else None



def _release_stream(directory: str) -> None:
    import shutil

    left = _STREAM_USERS.get(directory, 1) - 1
    if left > 0:
        _STREAM_USERS[directory] = left
        return
    _STREAM_USERS.pop(directory, None)
    shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Result:
    """One run's output. See the module docstring for the tables; all times in ns."""

    scenario: dict
    interrupts: pd.DataFrame | None   # None when record.tables is "stream" or "summary"
    switches: pd.DataFrame | None
    residency: pd.DataFrame
    counters: dict
    timeline: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)
    # With a [host] section (docs/host.md): per host thread, per CPU, CPU segments.
    threads: pd.DataFrame | None = None
    cpus: pd.DataFrame | None = None
    host_timeline: pd.DataFrame | None = None

    @classmethod
    def from_run(cls, fields: dict) -> "Result":
        """A result from the engine's hand-over (:func:`vsmsim.engine.harvest.harvest`)."""
        fields = dict(fields)
        fields["meta"] = {"vsmsim_version": __version__, **fields["meta"]}
        res = cls(**fields)
        res.meta["overload"] = overload(res)  # saved in manifest.json; see vsmsim.overload
        d = _stream_dir(res.meta)
        if d is not None:
            _hold_stream(res, d)
        return res

    def __getstate__(self):
        # Sent to another process (a worker pool's result): the streamed files stay for
        # the receiving side, which takes over their lifetime (__setstate__).
        state = dict(self.__dict__)
        hold = state.pop("_stream_hold", None)
        if hold is not None:
            hold.detach()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        d = _stream_dir(self.meta)
        if d is not None and Path(d).is_dir():
            _hold_stream(self, d)

    @property
    def name(self) -> str:
        """Scenario name."""
        return self.scenario.get("name", "scenario")

    @property
    def design(self) -> str:
        """Design name (as the scenario gave it)."""
        return self.meta.get("design_name", self.scenario.get("design", "?"))

    @property
    def measured_ns(self) -> int:
        """Length of the measured window (duration minus warmup), ns."""
        return int(self.scenario["duration"]) - int(self.scenario.get("warmup", 0))

    @property
    def tables(self) -> str:
        """How the run recorded its rows (``record.tables``): all, stream or summary."""
        return self.meta.get("tables", "all")

    def rows(self, table: str = "interrupts") -> pd.DataFrame:
        """The ``interrupts`` or ``switches`` table. With ``record.tables = "stream"`` it is
        read from the streamed Parquet file on first use (sorted by id, as "all" holds
        it); with ``"summary"`` there are no rows and this raises an
        :class:`~vsmsim.errors.InputError` saying so."""
        if table not in ("interrupts", "switches"):
            raise ValueError(f"table {table!r}: allowed interrupts, switches")
        df = getattr(self, table)
        if df is not None:
            return df
        from .errors import InputError
        if self.tables == "summary":
            raise InputError(f"{self.name}: record.tables = \"summary\" keeps no {table} rows "
                             f"(only the summary); rerun with record.tables = \"all\" or "
                             f"\"stream\" for this")
        df = _read_stream(self.meta.get("stream_files", {}).get(table), table,
                          self.meta.get("stream_categories", {}))
        setattr(self, table, df)
        return df

    def n_rows(self, table: str = "interrupts") -> int:
        """Rows of *table* without loading a streamed one (stream and summary: those of the
        measured window, from the counters)."""
        df = getattr(self, table)
        return len(df) if df is not None else int(self.counters.get(table, 0))

    def measured(self) -> pd.DataFrame:
        """Interrupt rows raised after the warmup."""
        w = int(self.scenario.get("warmup", 0))
        df = self.rows("interrupts")
        return df[df["raised_ns"] >= w] if w else df

    def summary(self) -> pd.DataFrame:
        """Long table ``metric, kind, vtl, value, unit``: latencies, residency, counters.

        Latency percentiles are over interrupts raised after the warmup and handled by the
        end; ``pending`` counts those still waiting; ``coalesced`` those merged into an
        interrupt of the same vector already pending (they have no handler of their own and
        are left out of the percentiles and of ``pending``; ``count`` includes them).
        Residency and counters cover the measured window (after the warmup).
        """
        if "summary_rows" in self.meta:
            # stream / summary: the tally's rows, with each value's relative error bound
            rows = [tuple(r[:5]) for r in self.meta["summary_rows"]]
            errors = [float(r[5]) for r in self.meta["summary_rows"]]
        else:
            rows, errors = self._latency_summary(), None
        n_lat = len(rows)
        res = self.residency
        total = float(res["total_ns"].sum()) or 1.0
        nvtl = int(self.scenario["vm"]["vtls"])
        for v in range(nvtl):
            rows.append(("residency", f"vtl{v}", v, float(res[f"vtl{v}_ns"].sum()) / total, "share"))
        for col in ("transition", "exit", "idle", "steal"):
            if f"{col}_ns" in res:  # steal: with a host layer (docs/host.md)
                rows.append(("residency", col, -1, float(res[f"{col}_ns"].sum()) / total,
                             "share"))
        for v in range(nvtl):
            if f"compute{v}_ns" in res:
                rows.append(("compute_share", f"vtl{v}", v,
                             float(res[f"compute{v}_ns"].sum()) / total, "share"))
        if "vmm_ns" in self.meta:
            # Of the CPU time the VM used (VP time plus the VMM estimate): bounded by 1 even
            # when host threads off the VPs do VMM work; vmm_cpus is that work in CPUs.
            vmm = float(self.meta["vmm_ns"])
            rows.append(("vmm_cpu_share", "", -1, vmm / (vmm + total), "share"))
            rows.append(("vmm_cpus", "", -1, vmm / max(self.measured_ns, 1), "CPUs"))
        if "vtl0_tax" in self.meta:
            rows.append(("vtl0_tax", "", 0, float(self.meta["vtl0_tax"]), "share"))
        secs = self.measured_ns / 1e9
        for k, v in self.counters.items():
            rows.append((k, "", -1, float(v), "count"))
            rows.append((f"{k}_per_s", "", -1, float(v) / secs, "1/s"))
        out = pd.DataFrame(rows, columns=["metric", "kind", "vtl", "value", "unit"])
        if errors is not None:
            # 0: exact; > 0: estimated within that relative error (docs/metrics.md)
            out["rel_error"] = errors + [0.0] * (len(rows) - n_lat)
        return out

    def _latency_summary(self) -> list[tuple]:
        rows = []
        df = self.measured()
        for (kind, vtl), g in df.groupby(["kind", "vtl"], observed=True, sort=True):
            _latency_rows(rows, str(kind), int(vtl), g)
        woke = df[df["woke"]]
        for (kind, vtl), g in woke.groupby(["kind", "vtl"], observed=True, sort=True):
            d = g["delivery_ns"].dropna().to_numpy(dtype=float)
            if len(d):
                rows.append(("wakeup_n", str(kind), int(vtl), float(len(d)), "count"))
                rows.append(("wakeup_p50", str(kind), int(vtl), float(np.percentile(d, 50)), "ns"))
                rows.append(("wakeup_p99", str(kind), int(vtl), float(np.percentile(d, 99)), "ns"))
        sw = self.rows("switches")
        w = int(self.scenario.get("warmup", 0))
        sw = sw[sw["start_ns"] >= w] if w else sw
        dur = (sw["end_ns"] - sw["start_ns"]).astype("Float64")
        for reason, d in dur.groupby(sw["reason"], observed=True):
            d = d.dropna().to_numpy(dtype=float)
            if len(d):
                rows.append(("switch_count", str(reason), -1, float(len(d)), "count"))
                rows.append(("switch_mean", str(reason), -1, float(d.mean()), "ns"))
                rows.append(("switch_p99", str(reason), -1, float(np.percentile(d, 99)), "ns"))
        return rows

    def explain(self, irq_id: int) -> str:
        """Interrupt *irq_id*'s life step by step, as text (:func:`vsmsim.explain.explain`)."""
        from .explain import explain_text

        return explain_text(self, irq_id)

    def latency(self, kind: str | None = None, vtl: int | None = None,
                which: str = "delivery") -> pd.Series:
        """Delivered latencies (``delivery`` or ``response``), ns, after the warmup."""
        df = self.measured()
        if kind is not None:
            df = df[df["kind"] == kind]
        if vtl is not None:
            df = df[df["vtl"] == vtl]
        return df[f"{which}_ns"].dropna().astype("int64")

    # ------------------------------------------------------------------ files
    def save(self, path) -> Path:
        """Write the result to directory *path*, atomically: complete or absent.

        Files: ``interrupts.parquet``, ``switches.parquet``, ``residency.parquet``,
        ``timeline.parquet`` (when recorded), ``summary.csv``, ``manifest.json``.
        """
        path = Path(path)
        with atomic_dir(path) as tmp:
            for table, fname in (("interrupts", names.INTERRUPTS), ("switches", names.SWITCHES)):
                df = getattr(self, table)
                streamed = self.meta.get("stream_files", {}).get(table)
                if df is not None:
                    df.to_parquet(tmp / fname, index=False)
                elif streamed:  # copied as streamed (in the order rows became final)
                    import shutil
                    shutil.copyfile(streamed, tmp / fname)
            self.residency.to_parquet(tmp / names.RESIDENCY, index=False)
            if self.timeline is not None:
                self.timeline.to_parquet(tmp / names.TIMELINE, index=False)
            for table, fname in (("threads", names.THREADS), ("cpus", names.CPUS),
                                 ("host_timeline", names.HOST_TIMELINE)):
                df = getattr(self, table)
                if df is not None:
                    df.to_parquet(tmp / fname, index=False)
            self.summary().to_csv(tmp / names.SUMMARY, index=False)
            meta = dict(self.meta)
            if "stream_files" in meta:  # the saved copies are the result's files now
                meta["stream_files"] = {t: f for t, f in (("interrupts", names.INTERRUPTS),
                                                          ("switches", names.SWITCHES))
                                        if (tmp / f).is_file()}
            manifest = {"scenario": self.scenario, "counters": self.counters, **meta,
                        "categories": _categories(self)}
            (tmp / names.MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        return path


def _latency_rows(rows, kind, vtl, g):
    rows.append(("count", kind, vtl, float(len(g)), "count"))
    if "coalesced" in g:  # results saved before IRR coalescing have no such column
        merged = g["coalesced"].to_numpy(dtype=bool)
        rows.append(("coalesced", kind, vtl, float(merged.sum()), "count"))
        g = g[~merged]
    d = g["delivery_ns"].dropna().to_numpy(dtype=float)
    r = g["response_ns"].dropna().to_numpy(dtype=float)
    rows.append(("pending", kind, vtl, float(len(g) - len(d)), "count"))
    if len(d):
        rows.append(("delivery_n", kind, vtl, float(len(d)), "count"))
        rows.append(("delivery_mean", kind, vtl, float(d.mean()), "ns"))
        for name, q in PERCENTILES:
            rows.append((f"delivery_{name}", kind, vtl, float(np.percentile(d, q)), "ns"))
        rows.append(("delivery_max", kind, vtl, float(d.max()), "ns"))
    if len(r):
        rows.append(("response_n", kind, vtl, float(len(r)), "count"))
        rows.append(("response_mean", kind, vtl, float(r.mean()), "ns"))
        for name, q in PERCENTILES:
            rows.append((f"response_{name}", kind, vtl, float(np.percentile(r, q)), "ns"))
        rows.append(("response_max", kind, vtl, float(r.max()), "ns"))
    if g["resumed_ns"].notna().any():  # calls into a higher VTL: the caller resumed
        rt = (g["resumed_ns"] - g["raised_ns"]).dropna().to_numpy(dtype=float)
        if len(rt):
            rows.append(("roundtrip_n", kind, vtl, float(len(rt)), "count"))
            rows.append(("roundtrip_mean", kind, vtl, float(rt.mean()), "ns"))
            rows.append(("roundtrip_p50", kind, vtl, float(np.percentile(rt, 50)), "ns"))
            rows.append(("roundtrip_p99", kind, vtl, float(np.percentile(rt, 99)), "ns"))


def _categories(res: Result) -> dict:
    """``{"table.column": [categories]}`` of every categorical column: Parquet keeps no
    categories for an empty table, so the manifest carries them."""
    out = {}
    for tname in ("interrupts", "switches", "residency", "timeline"):
        df = getattr(res, tname)
        if df is None:
            continue
        for col in df.columns:
            if isinstance(df[col].dtype, pd.CategoricalDtype):
                out[f"{tname}.{col}"] = [str(c) for c in df[col].cat.categories]
    return out


def _restore_categories(tables: dict, cats: dict) -> None:
    from .record import KINDS, REASONS, STATES

    # Results saved before the manifest kept categories: the fixed vocabularies at least.
    known = {"interrupts.kind": list(KINDS), "switches.reason": list(REASONS),
             "timeline.state": list(STATES)}
    for key, values in {**known, **cats}.items():
        tname, _, col = key.partition(".")
        df = tables.get(tname)
        if df is None or col not in df.columns:
            continue
        cur = df[col]
        have = [str(c) for c in cur.cat.categories] if isinstance(cur.dtype, pd.CategoricalDtype) \
            else None
        if have == values:
            continue
        if have is not None and any(c not in values for c in have):
            continue  # not the vocabulary this column was saved with: leave it alone
        df[col] = pd.Categorical(cur.astype(object) if len(cur) else [], categories=values)


def load_result(path) -> Result:
    """Load a result written by :meth:`Result.save` (categorical columns keep their
    categories, empty tables included)."""
    path = Path(path)
    mf = path / names.MANIFEST
    if not mf.is_file():
        from .errors import InputError
        raise InputError(f"{path}: not a vsmsim result (no manifest.json)")
    manifest = json.loads(mf.read_text())
    scenario = manifest.pop("scenario")
    counters = manifest.pop("counters")
    cats = manifest.pop("categories", {})
    tl = path / names.TIMELINE
    rowless = manifest.get("tables", "all") != "all"
    if "stream_files" in manifest:  # relative to the result directory
        manifest["stream_files"] = {t: str(path / f)
                                    for t, f in manifest["stream_files"].items()}
    tables = {
        "interrupts": None if rowless else pd.read_parquet(path / names.INTERRUPTS),
        "switches": None if rowless else pd.read_parquet(path / names.SWITCHES),
        "residency": pd.read_parquet(path / names.RESIDENCY),
        "timeline": pd.read_parquet(tl) if tl.is_file() else None,
    }
    for table, fname in (("threads", names.THREADS), ("cpus", names.CPUS),
                         ("host_timeline", names.HOST_TIMELINE)):
        if (path / fname).is_file():
            tables[table] = pd.read_parquet(path / fname)
    _restore_categories(tables, cats)
    return Result(scenario=scenario, counters=counters, meta=manifest, **tables)


def _read_stream(file, table: str, categories: dict) -> pd.DataFrame:
    """A streamed table read back in id order, categorical columns restored, so that it
    equals the table ``record.tables = "all"`` keeps (an empty one if nothing was
    streamed)."""
    from .record import NF, NSW, interrupt_table, switch_table
    if file is not None and not Path(file).is_file():
        from .errors import InputError
        raise InputError(f"streamed {table} rows: {file} no longer exists (a temporary file "
                         "lives as long as the result in the process that ran it; save the "
                         "result there with Result.save to keep it)")
    if file is None:
        if table == "interrupts":
            return interrupt_table(np.zeros((0, NF), np.int64),
                                   categories.get("interrupts.workload", []),
                                   categories.get("interrupts.path", []))
        return switch_table(np.zeros((0, NSW), np.int64))
    df = pd.read_parquet(file)
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    if table == "switches":
        df = df.drop(columns="id")
    tables = {table: df}
    _restore_categories(tables, categories)
    return tables[table]
