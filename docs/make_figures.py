"""Regenerate the README's figure from the README's own command.

    python docs/make_figures.py        # ~30 s; writes docs/img/q1_latency_cdf.png

It runs exactly what the README tells a new user to run, ``vsmsim compare
scenarios/q1_preemption.toml`` (in a temporary directory, so no results/ is left behind),
and copies the VTL1 timer CDF it wrote, at the plots' own resolution (150 dpi).
"""

import os
import shutil
import tempfile
from pathlib import Path

from vsmsim.cli import main as vsmsim

HERE = Path(__file__).resolve().parent
#: The README's command, word for word (tests/test_docs.py checks that it is there).
COMMAND = "vsmsim compare scenarios/q1_preemption.toml"
OUT = HERE / "img" / "q1_latency_cdf.png"


def main(argv=None):
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(HERE.parent / "scenarios", Path(tmp) / "scenarios")
        old = os.getcwd()
        os.chdir(tmp)
        try:
            rc = vsmsim(COMMAND.split()[1:] + list(argv or []))
        finally:
            os.chdir(old)
        if rc:
            raise SystemExit(rc)
        OUT.parent.mkdir(exist_ok=True)
        shutil.copyfile(Path(tmp) / "results" / "q1-preemption" / "compare" /
                        "latency_timer_vtl1.png", OUT)
    print(OUT)


if __name__ == "__main__":
    main()
