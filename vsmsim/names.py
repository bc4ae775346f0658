"""File and directory names that one module writes and another reads, in one place."""

# A result directory (Result.save / load_result).
INTERRUPTS = "interrupts.parquet"
SWITCHES = "switches.parquet"
RESIDENCY = "residency.parquet"
TIMELINE = "timeline.parquet"
# with a [host] section
THREADS = "threads.parquet"
CPUS = "cpus.parquet"
HOST_TIMELINE = "host_timeline.parquet"
SUMMARY = "summary.csv"
MANIFEST = "manifest.json"
TRACE = "trace.json"

# A comparison directory (Comparison.save): one result directory per design, plus these.
COMPARISON = "comparison.csv"
COMPARISON_MANIFEST = "comparison.json"
COMPARISON_INTERVALS = "intervals.csv"      # per metric and design: mean and 95 % interval
COMPARISON_DIFFERENCES = "differences.csv"  # paired differences against the first design
COMPARISON_RUNS = "replications.csv"        # every replication's summary, long
REPORT = "report.html"
BASELINE_DIR = "_vsm-off"

# A sweep directory.
SWEEP_PLAN = "sweep.json"
SWEEP_RUNS = "runs.parquet"
SWEEP_POINTS = "points.csv"
SWEEP_RUN_DIR = "runs"

# Plots. Every plot file vsmsim writes is ``<stem>.<format>`` with a stem from plot_stem.
PLOT_FORMATS = ("png", "svg")


def plot_stem(name: str) -> str:
    """The file stem of a plot of *name* (a metric column such as
    ``delivery_p99[timer,vtl1]`` or a plot name such as ``latency_timer_vtl1``):
    letters, digits, ``_``, ``.`` and ``-`` only, so no shell glob or quoting is needed
    (``delivery_p99-timer-vtl1``). The one naming scheme of ``sweep --plot``,
    ``vsmsim plot`` and ``compare``."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")

#: Prefix of the temporary directory a run with record.tables = "stream" writes its rows to.
STREAM_PREFIX = "vsmsim-stream-"
