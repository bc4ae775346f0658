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
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["timer: target VTL inactive: notify, switch up (deliver.inactive.timer)"]
    by_kind = plots.wakeup_histogram(cmp, by="kind")
    assert [t.get_text() for t in by_kind.legends[0].get_texts()] == ["timer"]


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
    assert "µs" in ax.get_ylabel() and ax.get_xlabel() == "VPs (vm.vps)"
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


# ------------------------------------------------------------------ issue 17: honest plots
def side_text(fig):
    return "\n".join(t.get_text() for t in fig.axes[1].texts)


def test_cdf_x_range_fits_the_data_and_shows_n(cmp):
    fig = plots.latency_cdf(cmp, kind="timer", vtl=1)
    lo, hi = fig.axes[0].get_xlim()
    ns = np.concatenate([cmp[d].latency("timer", 1).to_numpy() for d in DESIGNS])
    assert lo == pytest.approx(ns[ns > 0].min() / 1e3 / 1.25)
    assert hi == pytest.approx(ns.max() / 1e3 * 1.25)
    text = side_text(fig)
    for d in DESIGNS:
        n = len(cmp[d].latency("timer", 1))
        assert any(line.startswith(d) and line.split()[-1] == str(n) for line in text.splitlines())
    assert fig.axes[1].texts[0].get_fontsize() >= 7.5
    assert "delivery latency (raise to handler start)" in fig.axes[0].get_xlabel()
    assert "timer interrupts to VTL1" in fig.get_suptitle()


def test_cdf_notes_coinciding_designs_and_zero_latencies():
    r = vsmsim.simulate(scenario(duration="3ms"))
    fig = plots.latency_cdf({"a": r, "b": r}, kind="timer", vtl=1)
    assert "a and b coincide" in side_text(fig)
    # Zero latencies: drawn at the axis' left edge and counted, not clamped to 1 ns.
    z = dataclasses.replace(r, interrupts=r.interrupts.copy())
    i = z.interrupts.index[(z.interrupts.kind == "timer") & (z.interrupts.vtl == 1)
                           & (z.interrupts.raised_ns >= 1_000_000)][:3]
    z.interrupts.loc[i, "start_ns"] = z.interrupts.loc[i, "raised_ns"]
    z.interrupts.loc[i, "delivery_ns"] = 0
    fig = plots.latency_cdf(z, kind="timer", vtl=1)
    lo = fig.axes[0].get_xlim()[0]
    assert lo > 0.5  # µs: the fastest non-zero latency sets it, not 1 ns
    step = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == r.design][0]
    assert step.get_xdata()[0] == pytest.approx(lo)
    assert "3 at 0 ns, drawn at the left edge" in side_text(fig)


def test_roundtrip_cdf_for_vtl_calls(tmp_path):
    r = vsmsim.simulate(scenario(workload=[{"kind": "compute"},
                                           {"kind": "vtl-call", "rate": 20000,
                                            "service": {"dist": "exp", "mean": "2us"}}]))
    fig = plots.latency_cdf(r, kind="vtl-call", vtl=1, which="roundtrip")
    x = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == r.design][0].get_xdata()
    assert x.max() - x.min() > 5  # µs: spread by the service times, not a vertical line
    assert "round trip" in fig.axes[0].get_xlabel()
    names = {p.name for p in plots.plot_results(r, tmp_path)}
    assert "roundtrip_vtl-call_vtl1.png" in names and "latency_vtl-call_vtl1.png" not in names


def test_wakeup_histogram_tight_range_and_explained_causes(cmp):
    fig = plots.wakeup_histogram(cmp)
    lo, hi = fig.axes[0].get_xlim()
    d = np.concatenate([cmp[n].measured().query("woke")["delivery_ns"].dropna().to_numpy(float)
                        for n in DESIGNS])
    assert lo == pytest.approx(d[d > 0].min() / 1.15 / 1e3)
    assert hi == pytest.approx(d.max() * 1.15 / 1e3)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("target VTL inactive" in t and "(deliver.inactive" in t for t in labels)


def test_residency_shows_the_share_outside_vtl0_on_its_own_scale():
    c = vsmsim.compare(scenario(duration="4ms"), designs=["vm-per-vtl", "planes"])
    fig = plots.residency_bars(c)
    zoom = fig.axes[1]
    assert "VTL0" not in [b.get_label() for b in zoom.containers]
    top = max(sum(v for k, v in plots.residency_shares(c[d]).items() if k != "VTL0")
              for d in c.designs) * 100
    assert zoom.get_ylim()[1] == pytest.approx(top * 1.45)
    text = "\n".join(t.get_text() for t in zoom.texts)
    assert "trans.+exits" in text
    tax = c["planes"].meta["vtl0_tax"] * 100
    assert f"VTL0 tax {tax:.2g}%" in text


def test_counter_bars_per_event_linear_and_vmm_share(cmp):
    fig = plots.counter_bars(cmp, per="interrupts", log=False)
    ax = fig.axes[0]
    r = cmp["vm-per-vtl"]
    h = ax.containers[DESIGNS.index("vm-per-vtl")].patches[0].get_height()
    assert h == pytest.approx(r.counters["exits"] / r.counters["interrupts"])
    assert ax.get_yscale() == "linear" and "per interrupt" in fig.get_suptitle()
    vmm = fig.axes[1]
    share = r.summary().set_index("metric")["value"]["vmm_cpu_share"] * 100
    assert vmm.patches[DESIGNS.index("vm-per-vtl")].get_height() == pytest.approx(share)


def test_sweep_plot_has_human_labels_and_the_number_of_runs():
    rows = [{"vm.vps": n, "design": d, "delivery_p99[timer,vtl1]": 1000.0 * n + k}
            for n in (2, 4, 8) for d in ("planes", "vm-per-vtl") for k in range(3)]
    fig = plots.latency_vs_vcpus(pd.DataFrame(rows), "delivery_p99[timer,vtl1]")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "p99 delivery latency, timer to VTL1 (µs)"
    assert ax.get_xlabel() == "VPs (vm.vps)"
    assert "3 runs per point" in ax.get_title()


def test_timeline_zoom_around_one_vtl1_event(cmp):
    r = cmp["vm-per-vtl"]
    fig = plots.timeline_zoom(r)
    from vsmsim.plots.timeline import zoom_event
    row = zoom_event(r)
    assert int(row["vtl"]) == 1
    lo, hi = fig.axes[0].get_xlim()
    assert lo * 1e3 < row["raised_ns"] and hi * 1e3 > row["end_ns"]
    assert hi - lo < 1000  # µs: a zoom, not the 2 ms overview
    assert f"#{int(row['id'])}" in fig.get_suptitle()
