"""Regenerate the README's figure: the q1 preemption latency CDF of the five designs.

    python docs/make_figures.py        # writes docs/img/q1_latency_cdf.png (~10 s)
"""

from pathlib import Path

import vsmsim
from vsmsim import plots

HERE = Path(__file__).resolve().parent


def main():
    sc = vsmsim.load_scenario(HERE.parent / "scenarios" / "q1_preemption.toml")
    cmp = vsmsim.compare(sc.with_overrides({"duration": "100ms"}), baseline=False)
    fig = plots.latency_cdf(cmp, kind="timer", vtl=1)
    fig.set_size_inches(9, 4.2)
    out = HERE / "img" / "q1_latency_cdf.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=80)
    print(out)


if __name__ == "__main__":
    main()
