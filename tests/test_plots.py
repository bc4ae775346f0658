"""Plots: each function gives a Figure with the expected artists; files are written."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import vsmsim  # noqa: E402
from vsmsim import plots  # noqa: E402
from vsmsim.errors import InputError  # noqa: E402

DESIGNS = ["apic-id-groups", "vm-per-vtl", "planes"]


def scenario(**extra):
    data = {"name": "plotdemo", "duration": "10ms", "warmup": "1ms", "vm": {"vps": 3, "vtls": 2},
            "record": {"timeline": True},
            "workload": [{"kind": "compute", "vtl": 0},
                         {"kind": "timer", "vtl": 0, "period": "250us", "service": "2us"},
                         {"kind": "timer", "vtl": 1, "period": "1ms", "service": "20us"},
                         {"kind": "ipi", "vtl": 0, "rate": 40000}]}
    data.update(extra)
    return vsmsim.Scenario.model_validate(data)


@pytest.fixture(scope="module")
def cmp():
    return vsmsim.compare(scenario(), designs=DESIGNS)


def line_color(fig, design):
    for line in fig.axes[0].get_lines():
        if line.get_label() == design:
            return to_hex(line.get_color())
    raise AssertionError(f"no line for {design}")


def test_latency_cdf_one_line_per_design(cmp):
    fig = plots.latency_cdf(cmp, kind="timer", vtl=1)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labelled = [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert labelled == DESIGNS
    assert ax.get_xscale() == "log"
    assert "µs" in ax.get_xlabel()
    assert "plotdemo" in fig.get_suptitle() and "timer" in fig.get_suptitle()
    legend = fig.axes[1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == DESIGNS
    # p50 and p99 markers: one of each per design, at the right heights.
    marks = [ln for ln in ax.get_lines() if ln.get_label().startswith("_") and ln.get_marker() in "o^"]
    assert sorted(ln.get_marker() for ln in marks) == ["^"] * 3 + ["o"] * 3
    p50 = np.percentile(cmp["planes"].latency("timer", 1).to_numpy(), 50) / 1e3
    xs = [ln.get_xdata()[0] for ln in marks if ln.get_marker() == "o"
          and to_hex(ln.get_color()) == plots.DESIGN_COLORS["planes"]]
    assert xs == [pytest.approx(p50)]


def test_latency_cdf_single_result_and_no_data(cmp):
    fig = plots.latency_cdf(cmp["planes"], which="response", tail=False)
    assert [ln.get_label() for ln in fig.axes[0].get_lines()
            if not ln.get_label().startswith("_")] == ["planes"]
    assert fig.axes[0].get_yscale() == "linear"
    empty = plots.latency_cdf(cmp, kind="pv-ipi")
    assert any("no handled" in t.get_text() for t in empty.axes[0].texts)


def test_same_design_same_colour_everywhere(cmp):
    cdf = plots.latency_cdf(cmp, kind="ipi", vtl=0)
    bars = plots.counter_bars(cmp)
    ax = bars.axes[0]
    bar_colors = {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in ax.containers}
    for d in DESIGNS:
        assert line_color(cdf, d) == bar_colors[d] == plots.DESIGN_COLORS[d]
    res_fig = plots.residency_bars(cmp)
    ticks = {t.get_text(): to_hex(t.get_color()) for t in res_fig.axes[0].get_xticklabels()}
    assert ticks == {d: plots.DESIGN_COLORS[d] for d in DESIGNS}
    # A user design keeps its colour whatever it is plotted with.
    assert plots.design_colors(["planes", "my-design"])["my-design"] == plots.design_color("my-design")


def test_wakeup_histogram_panels(cmp):
    fig = plots.wakeup_histogram(cmp)
    axes = fig.axes
    assert len(axes) == len(DESIGNS)
    for ax, d in zip(axes, DESIGNS):
        assert ax.get_xscale() == "log"
        assert ax.get_title(loc="left").startswith(d)
        assert len(ax.patches) > 0
    assert "µs" in axes[-1].get_xlabel()
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == ["timer: deliver.inactive.timer"]
    by_kind = plots.wakeup_histogram(cmp, by="kind")
    assert [t.get_text() for t in by_kind.axes[0].get_legend().get_texts()] == ["timer"]


def test_timeline_exact_and_rebuilt(cmp):
    res = cmp["vm-per-vtl"]
    fig = plots.timeline(res, window=("1ms", "2ms"))
    ax = fig.axes[0]
    assert ax.get_xlim() == (1000.0, 2000.0)
    assert "µs" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["VP0", "VP1", "VP2"]
    assert len(ax.collections) >= 4  # work, handlers, transitions, exits
    assert "vm-per-vtl" in fig.get_suptitle()
    no_tl = dataclasses.replace(res, timeline=None)
    fig2 = plots.timeline(no_tl, vps=[1], window=(1_000_000, 1_100_000))
    assert "rebuilt" in fig2.axes[0].get_title(loc="left")
    assert [t.get_text() for t in fig2.axes[0].get_yticklabels()] == ["VP1"]
    many = plots.timeline(cmp)
    assert len(many.axes) == len(DESIGNS)


def test_residency_bars_one_container_per_state(cmp):
    fig = plots.residency_bars(cmp)
    ax = fig.axes[0]
    states = ["VTL0", "VTL1", "transitions", "exits", "idle"]
    assert [c.get_label() for c in ax.containers] == states
    tops = np.sum([[p.get_height() for p in c.patches] for c in ax.containers], axis=0)
    assert tops == pytest.approx([100.0] * len(DESIGNS))
    assert "%" in ax.get_ylabel()


def test_counter_bars_groups(cmp):
    fig = plots.counter_bars(cmp)
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.containers] == DESIGNS
    assert all(len(c.patches) == 4 for c in ax.containers)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["exits", "uexits", "wakeups", "ioctls"]
    assert "1/s" in ax.get_ylabel()
    r = cmp["vm-per-vtl"]
    exits_per_s = r.counters["exits"] / (r.measured_ns / 1e9)
    heights = ax.containers[DESIGNS.index("vm-per-vtl")].patches[0].get_height()
    assert heights == pytest.approx(exits_per_s)


def test_latency_vs_vcpus_lines_and_bands():
    rng = np.random.default_rng(1)
    rows = []
    for d in ("apic-id-groups", "planes"):
        for n in (4, 16, 64):
            for rep in range(3):
                rows.append({"vm.vps": n, "design": d, "replication": rep,
                             "delivery_p99[ipi,vtl0]": 1000.0 * n * (2 if d == "planes" else 5)
                             + rng.normal(0, 100)})
    df = pd.DataFrame(rows)
    fig = plots.latency_vs_vcpus(df, "delivery_p99[ipi,vtl0]")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in lines] == ["apic-id-groups", "planes"]
    assert to_hex(lines[1].get_color()) == plots.DESIGN_COLORS["planes"]
    assert len(ax.collections) == 2  # one band per design
    assert "µs" in ax.get_ylabel() and ax.get_xlabel() == "vm.vps"
    means = df[df.design == "planes"].groupby("vm.vps")["delivery_p99[ipi,vtl0]"].mean() / 1e3
    assert list(lines[1].get_ydata()) == pytest.approx(list(means))
    # A points table with its own interval columns (the sweep's aggregate), no hue.
    pts = pd.DataFrame({"vm.vps": [4, 16], "exits_per_s": [10.0, 20.0],
                        "exits_per_s_ci_low": [9.0, 18.0], "exits_per_s_ci_high": [11.0, 22.0]})
    fig2 = plots.latency_vs_vcpus(pts, "exits_per_s", hue=None)
    assert "1/s" in fig2.axes[0].get_ylabel()
    assert len(fig2.axes[0].collections) == 1


def test_plot_comparison_writes_files(cmp, tmp_path):
    out = tmp_path / "plots"
    paths = plots.plot_comparison(cmp, out, formats=("png", "svg"))
    names = {p.name for p in paths}
    for stem in ("latency_timer_vtl1", "latency_ipi_vtl0", "wakeups", "residency", "counters",
                 "timeline"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
    for p in paths:
        assert p.is_file() and p.stat().st_size > 1000
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_plot_saved_comparison_and_result_dirs(cmp, tmp_path):
    cdir = tmp_path / "cmp"
    cmp.save(cdir)
    assert (cdir / "_vsm-off").is_dir()
    assert list(plots.load_saved(cdir)) == DESIGNS
    paths = plots.plot_saved(cdir, formats=("png",))
    assert {p.parent for p in paths} == {cdir}
    assert (cdir / "residency.png").is_file()
    rdir = tmp_path / "one"
    cmp["planes"].save(rdir)
    paths = plots.plot_saved(rdir)
    assert (rdir / "timeline.png") in paths


def test_plot_saved_rejects_other_dirs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError) as e:
        plots.plot_saved(empty)
    assert str(e.value) == f"{empty}: not a vsmsim result or comparison directory"
    with pytest.raises(InputError):
        plots.plot_saved(tmp_path / "missing")
