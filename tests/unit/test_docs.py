"""The docs cite only what exists: files and folders of the repository, and sagewatch modules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP_LEVEL = ("layers", "tests", "infra", "functions", "bench", "docs", "events", ".ci")
_TOP = "|".join(re.escape(t) for t in TOP_LEVEL)
# a path under a top-level folder (a unit such as "events/s" is not one: two characters at least)
FILE_PATH = re.compile(rf"(?<![\w/.-])((?:{_TOP})/(?:[\w.-]{{2,}}[\w./-]*[\w/])?)")
LINK = re.compile(r"\]\(([^)#\s]+)\)")
MODULE = re.compile(r"`(sagewatch(?:\.\w+)+)")
# Dotted names in the docs that are not modules: the Athena table, the local sender's domain.
NOT_MODULES = {"sagewatch.inferences", "sagewatch.local"}
PACKAGE = ROOT / "layers" / "core"


def cited_paths(document: Path) -> set[str]:
    text = document.read_text()
    links = {link for link in LINK.findall(text) if "://" not in link and not link.startswith("mailto:")}
    return {*FILE_PATH.findall(text), *(str((document.parent / link).relative_to(ROOT)) for link in links)}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_cited_file_exists(document: Path) -> None:
    missing = sorted(p for p in cited_paths(document) if not (ROOT / p.rstrip(".")).exists())
    assert missing == []


def module_exists(dotted: str) -> bool:
    """`sagewatch.a.b` is a module or package, or names something a module defines."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        base = PACKAGE.joinpath(*parts[:end])
        source = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if source.exists():
            rest = parts[end:]
            return (
                not rest or re.search(rf"^(?:def |class )?{rest[0]}\b", source.read_text(), re.M) is not None
            )
    return False


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_cited_module_exists(document: Path) -> None:
    cited = set(MODULE.findall(document.read_text())) - NOT_MODULES
    assert sorted(m for m in cited if not module_exists(m)) == []
