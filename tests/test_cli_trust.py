"""The command line a skeptic uses: --version, help with examples, units, text and report
output, explain and show, --trace-window alone, --workers, the TOML table hint, overload."""

import json
import re

import pytest

from vsmsim.cli import build_parser, main

GOOD = ('name = "tiny"\nquestion = "how long until a VTL1 timer runs?"\n'
        'headline = ["delivery_p50[timer,vtl1]", "delivery_p99[timer,vtl1]", "vtl0_tax"]\n'
        'duration = "3ms"\nwarmup = "500us"\n[vm]\nvps = 2\n[[workload]]\nkind = "compute"\n'
        '[[workload]]\nkind = "timer"\nvtl = 1\nrate = 20000\n'
        'service = { dist = "exp", mean = "2us" }\n')


@pytest.fixture
def scen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "s.toml"
    p.write_text(GOOD)
    return p


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and re.match(r"vsmsim \d+\.\d+", capsys.readouterr().out)


def test_every_option_has_help_and_every_command_an_example_and_a_doc_pointer():
    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command")
    assert {"run", "compare", "sweep", "explain", "show", "plot", "list", "validate"} <= set(sub.choices)
    for name, sp in sub.choices.items():
        assert "examples:" in sp.epilog and "docs" in sp.epilog, name
        assert f"vsmsim {name}" in sp.epilog
        for a in sp._actions:
            if a.dest != "help":
                assert a.help, f"{name} {a.option_strings or a.dest} has no help"


def test_compare_text_format_shows_question_units_n_and_intervals(scen, capsys):
    rc = main(["compare", str(scen), "--designs", "vm-per-vtl,planes-inkernel",
               "--replications", "3", "--format", "text", "--report", "--out", "c"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.isascii()
    assert "how long until a VTL1 timer runs?" in out
    assert "3 replications" in out and "95 % interval" in out
    assert re.search(r"p99 delivery latency, timer to VTL1\s+[\d.]+ \+-[\d.]+ us", out)
    assert re.search(r"samples \(n per run\)\s+n=\d+\s+n=\d+", out)
    assert "planes-inkernel" in out and "lower, better" in out
    html = (scen.parent / "c" / "report.html").read_text()
    assert "how long until a VTL1 timer runs?" in html and "data:image/png;base64," in html
    assert "Cost profile" in html and "vsmsim compare" in html and "seed&quot;: 0" in html
    assert "n=" in html and "±" in html


def test_one_replication_says_no_winner_and_csv_format(scen, capsys):
    assert main(["compare", str(scen), "--designs", "vm-per-vtl,planes", "--no-plots",
                 "--out", "c1"]) == 0
    out = capsys.readouterr().out
    assert "no design is called better" in out and "µs" in out
    assert main(["compare", str(scen), "--designs", "vm-per-vtl,planes", "--no-plots",
                 "--out", "c2", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("metric,kind,vtl,unit,vm-per-vtl,planes")


def test_run_and_compare_format_numbers_the_same_way(scen, capsys):
    main(["run", str(scen), "--out", "r"])
    run_out = capsys.readouterr().out
    main(["compare", str(scen), "--designs", "vm-per-vtl", "--no-plots", "--out", "c"])
    cmp_out = capsys.readouterr().out
    line = re.search(r"p99 delivery latency, timer to VTL1\s+(\S+ µs)", run_out).group(1)
    assert line in cmp_out  # same seed, same design: the same number, the same format


def test_trace_window_alone_implies_trace(scen):
    assert main(["run", str(scen), "--trace-window", "1ms", "2ms", "--out", "r"]) == 0
    assert json.loads((scen.parent / "r" / "trace.json").read_text())


def test_explain_and_show_design(scen, capsys):
    main(["run", str(scen), "--out", "r"])
    capsys.readouterr()
    assert main(["explain", "r", "--id", "5"]) == 0
    out = capsys.readouterr().out
    assert "interrupt 5" in out and "raised: timer" in out and "handler starts" in out
    assert "deliver.inactive" in out and "paid by receiver" in out and "counters" in out
    assert "switch VTL0 -> VTL1 (interrupt)" in out
    assert main(["explain", "r", "--id", "999999"]) == 2
    assert "no such interrupt" in capsys.readouterr().err
    assert main(["show", "design", "planes"]) == 0
    out = capsys.readouterr().out
    assert "switch.call" in out and "vtl_state_switch" in out and " ns " in out


def test_misplaced_top_level_key_gets_a_toml_hint(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text('name = "x"\n[vm]\nvps = 2\nduration = "2ms"\n')
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'duration' is a top-level key" in err and "[vm]" in err


def test_overload_warning_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "o.toml"
    p.write_text('name = "o"\nduration = "2ms"\n[vm]\nvps = 1\n[[workload]]\nkind = "compute"\n'
                 '[[workload]]\nkind = "timer"\nvtl = 1\nperiod = "500ns"\nservice = "1us"\n')
    assert main(["run", str(p)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "overload" in err and "200%" in err


def test_compare_workers_on_the_process_pool(scen, capsys):
    assert main(["compare", str(scen), "--designs", "vm-per-vtl,planes", "--no-plots",
                 "--replications", "2", "--workers", "2", "--out", "w"]) == 0
    a = capsys.readouterr().out
    assert main(["compare", str(scen), "--designs", "vm-per-vtl,planes", "--no-plots",
                 "--replications", "2", "--out", "s"]) == 0
    b = capsys.readouterr().out
    strip = lambda t: t.split("\n", 1)[1]  # noqa: E731 - the first line has the wall time
    assert strip(a) == strip(b)
