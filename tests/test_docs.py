"""The README and docs/ stay short, linked and true: the README's size and its two commands, every relative link,
the results table against the committed reports/vincent2008.csv, and every console transcript against a rerun of
its command (docs/transcripts.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import docs_transcripts

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAIN_JOB = "pip install -e . && dvc repro"
TESTS = 'pip install -e ".[test]" && pytest'
# Linked before they exist: files another item of the same issue writes. A pending file that exists is checked.
PENDING = {ROOT / "CONTRIBUTING.md"}
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where a bracket is not a link."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def test_readme_is_short_and_has_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 220, "README.md is for a newcomer's ten minutes: move detail to docs/"
    lines = [line.strip() for line in text.splitlines()]
    for command in (MAIN_JOB, TESTS):
        assert command in lines, f"README.md lost the command `{command}` (CI runs the test command as written)"


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a Markdown page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", prose(page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files(doc: Path) -> None:
    broken = []
    for target in LINK.findall(prose(doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # a URL
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            if path not in PENDING:
                broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)} links to files or headings that do not exist: {broken}"


def readme_table() -> pd.DataFrame:
    """The README's results table as (dataset, model, error_pct, paper_error_pct) rows."""
    lines = README.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| dataset | SVM_rbf"))
    models = [cell.strip() for cell in lines[header].strip("|").split("|")][1:]
    records = []
    for line in lines[header + 2 :]:  # after the header and its |---| line
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        dataset = cells[0].rstrip(" †‡")
        for model, cell in zip(models, cells[1:], strict=True):
            match = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", cell.replace("**", ""))
            assert match, f"README table: cannot read {dataset} {model}: {cell!r}"
            records.append((dataset, model, float(match[1]), float(match[2])))
    return pd.DataFrame(records, columns=["dataset", "model", "error_pct", "paper_error_pct"])


def test_readme_table_is_the_committed_one() -> None:
    ours = readme_table().set_index(["dataset", "model"]).sort_index()
    from pipeline.reporting.tables import PAPER_MODELS

    committed = pd.read_csv(ROOT / "reports" / "vincent2008.csv")
    committed = committed[committed["model"].isin(PAPER_MODELS)].set_index(["dataset", "model"]).sort_index()
    assert list(ours.index) == list(committed.index), "the README table's cells are not reports/vincent2008.csv's"
    for column in ("error_pct", "paper_error_pct"):
        differ = ours[column].round(2) != committed[column].round(2)
        assert not differ.any(), f"README {column} differs from reports/vincent2008.csv:\n{ours[differ]}"


def test_every_transcript_block_names_a_known_transcript() -> None:
    module = docs_transcripts()
    found = module.blocks()
    assert set(found) <= set(module.TRANSCRIPTS), f"unknown transcript blocks: {set(found) - set(module.TRANSCRIPTS)}"
    assert set(module.TRANSCRIPTS) <= set(found), f"transcripts with no block: {set(module.TRANSCRIPTS) - set(found)}"


def _params():
    module = docs_transcripts()
    cheap = [t for t in module.TRANSCRIPTS.values() if not t.expensive]
    return [pytest.param(t.name, marks=[] if t.seconds < 10 else [pytest.mark.slow], id=t.name) for t in cheap]


@pytest.mark.parametrize("name", _params())
def test_transcript_is_current(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "transcripts.py"), "--check", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"
