"""The documentation stays true: generated pages are current, code examples run."""

import re
from pathlib import Path

import pytest

from vsmsim.schema_doc import reference_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_scenario_reference_is_generated_from_the_schema():
    assert (DOCS / "scenario.md").read_text() == reference_markdown(), \
        "docs/scenario.md is stale: run python -m vsmsim.schema_doc > docs/scenario.md"


EXAMPLES = [(p.name, i, code) for p in sorted(DOCS.glob("*.md"))
            for i, code in enumerate(re.findall(r"```python\n(.*?)```", p.read_text(), re.S))]


@pytest.mark.parametrize("page,index,code", EXAMPLES, ids=[f"{p}#{i}" for p, i, _ in EXAMPLES])
def test_python_examples_in_the_docs_run(page, index, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page}#{index}", "exec"), {"__name__": "__doc_example__"})


def test_toml_examples_in_the_readme_validate(tmp_path):
    import vsmsim

    readme = (DOCS.parent / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert blocks
    for i, text in enumerate(blocks):
        f = tmp_path / f"readme{i}.toml"
        f.write_text(text)
        sc = vsmsim.load_scenario(f)
        res = vsmsim.simulate(sc.with_overrides({"duration": "2ms"}))
        assert len(res.interrupts) > 0


REPO = DOCS.parent
#: Files of the domain reference that live outside this repository; the project's own
#: pages must stand alone (docs/model.md is the reference), so nothing may point there.
FOREIGN_REFERENCES = ("MODEL.md", "ARCHITECTURE.md", "../shared")


def _tracked_files():
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    return [REPO / p for p in out.stdout.decode().split("\0") if p]


def test_no_tracked_file_outside_tests_cites_the_external_reference():
    offenders = []
    for path in _tracked_files():
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("tests/") or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images and other binary files
        for i, line in enumerate(text.splitlines(), 1):
            for ref in FOREIGN_REFERENCES:
                if ref in line:
                    offenders.append(f"{rel}:{i}: {ref}")
    assert not offenders, "point these at docs/model.md instead:\n" + "\n".join(offenders)


def test_every_rule_of_the_model_names_its_source_and_engine_status():
    text = (DOCS / "model.md").read_text()
    rules = re.findall(r"\*\*Rule (\d+) .*?(?=\n\*\*Rule |\n## )", text, re.S)
    assert [int(n) for n in rules] == list(range(1, 13))
    for n, body in zip(rules, re.findall(r"(\*\*Rule \d+ .*?)(?=\n\*\*Rule |\n## )", text, re.S)):
        assert "Source" in body, f"rule {n} names no source"
        assert "Engine:" in body, f"rule {n} has no engine status"


# ----------------------------------------------------------------- every command runs
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
#: Commands the tests cannot run, and why: installing the package (the suite runs from the
#: installed package), the suite itself, an editor.
NOT_RUN = {"pip install": "installs the package the tests are running",
           "pytest": "is the test suite itself",
           "bench/prototype.py": "is a benchmark: timed, and never part of the tests"}
#: Block languages: sh is run, python exec'd, toml validated; text is output or a synopsis
#: with [optional] parts; py is an excerpt of tests/example_kind.py (run by test_architecture).
LANGUAGES = {"sh", "python", "toml", "text", "py"}


def test_every_code_block_says_what_it_is():
    untagged = [f"{p.name}: {code.splitlines()[0] if code.strip() else ''}"
                for p in PAGES for lang, code in BLOCK.findall(p.read_text())
                if lang not in LANGUAGES]
    assert not untagged, "tag these blocks (sh, python, toml or text):\n" + "\n".join(untagged)


def _commands(text: str):
    for line in text.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            part = part.strip()
            if part and not part.startswith("#"):
                yield part


SH = [(p.name, cmd) for p in PAGES for lang, code in BLOCK.findall(p.read_text()) if lang == "sh"
      for cmd in _commands(code)]


@pytest.mark.parametrize("page,cmd", SH, ids=[f"{p}:{c[:50]}" for p, c in SH])
def test_every_shell_command_in_the_docs_runs(page, cmd, tmp_path, monkeypatch, capsys):
    """Each command of a ``sh`` block, run in a scratch directory that has the repository's
    scenarios (after the page's Python examples, which may write files the commands use).
    Simulated time is cut short (``--set duration=12ms``) and calibrate runs ``--quick``:
    the commands, options and files are the documented ones."""
    import shlex

    from vsmsim.cli import main

    for what, why in NOT_RUN.items():
        if what in cmd:
            pytest.skip(f"{cmd!r} {why}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios").symlink_to(REPO / "scenarios")
    text = (REPO / page if page == "README.md" else DOCS / page).read_text()
    for code in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(code, page, "exec"), {"__name__": "__doc_example__"})
    argv = shlex.split(cmd, comments=True)
    assert argv[0] == "vsmsim", f"{page}: {cmd!r} is not a vsmsim command; teach this test it"
    argv = [a.replace("/tmp/", f"{tmp_path}/") for a in argv[1:]]
    if argv[0] in ("run", "compare", "sweep"):
        argv += ["--set", "duration=12ms"]
    if argv[0] in ("calibrate", "prototype"):
        import os
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            pytest.skip("no usable /dev/kvm")
        argv += ["--quick"]
    if argv[0] == "prototype":
        # The documented options, on a small run; --check is a timing verdict (bench/).
        argv = [a for a in argv if a != "--check"]
        for key, value in (("--calls", "100"), ("--placement", "same-cpu")):
            if key in argv:
                argv[argv.index(key) + 1] = value
            else:
                argv += [key, value]
        argv += ["--out", str(tmp_path / "proto")]
    assert main(argv) == 0, capsys.readouterr().err


FILE_REF = re.compile(r"(?<![\w/.])((?:scenarios|docs|notebooks|bench|tests|vsmsim)/[\w./-]+"
                      r"\.(?:toml|py|md|ipynb|png|json))")


def test_every_file_the_docs_and_scenarios_name_exists():
    texts = [*PAGES, *sorted((REPO / "scenarios").glob("q*")), REPO / "notebooks" / "README.md"]
    missing = []
    for p in texts:
        for ref in FILE_REF.findall(p.read_text()):
            if not (REPO / ref).exists() and "<" not in ref:
                missing.append(f"{p.relative_to(REPO)}: {ref}")
    assert not missing, "\n".join(missing)


def test_markdown_links_resolve():
    bad = []
    for p in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", p.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (p.parent / target).exists():
                bad.append(f"{p.name}: {target}")
    assert not bad, "\n".join(bad)


def test_the_readme_figure_comes_from_the_readme_command():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "make_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.COMMAND in (REPO / "README.md").read_text()
    from PIL import Image

    with Image.open(DOCS / "img" / "q1_latency_cdf.png") as im:
        assert im.info.get("dpi", (150, 150))[0] >= 149 or im.size[0] >= 1200
