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
