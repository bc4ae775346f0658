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
