"""The documentation holds together: every relative link in README.md and docs/*.md reaches an
existing file, every ``#anchor`` a heading of its page (GitHub's slugs), and the README stays a
ten-minute read (at most 12 KiB, the generated results table included)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
README_MAX_BYTES = 12 * 1024
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
#: ``[text](target)``, ``[text](target "title")`` and images ``![alt](target)``; text may hold code spans
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)  # "## Title ##" too
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def prose(text: str) -> str:
    """``text`` without fenced code blocks and HTML comments (links there are not links)."""
    return _COMMENT.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The targets of the Markdown links and images of ``text``, outside code."""
    return _LINK.findall(_CODE_SPAN.sub("``", prose(text)))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text (no code ticks, emphasis or link targets),
    lowercase, punctuation dropped except ``-`` and ``_``, spaces to ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML; code ticks and emphasis marks go with the punctuation
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``, a repeated heading's as GitHub numbers them (``-1``, ``-2``)."""
    seen: dict[str, int] = {}
    found = set()
    for _, heading in _HEADING.findall(prose(page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if not target or _EXTERNAL.match(target) or target.startswith("//"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            problems.append(f"{target}: no such file ({linked.relative_to(REPO) if linked.is_relative_to(REPO) else linked})")
            continue
        if anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading '{anchor}' in {linked.name} (has: {', '.join(sorted(anchors(linked)))})")
        if anchor and linked.suffix != ".md":
            problems.append(f"{target}: an anchor into a file that is not Markdown")
    return problems


def test_there_are_pages_to_check():
    assert README.is_file()
    assert len(PAGES) > 1


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_relative_links_resolve(page: Path):
    assert broken_links(page) == []


def test_readme_is_short():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; keep it under {README_MAX_BYTES} (move detail to docs/)"


def test_readme_keeps_the_results_markers():
    """The results table is generated between these markers (one each, start before end)."""
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    assert text.count(start) == 1 and text.count(end) == 1
    assert text.index(start) < text.index(end)


# -- the checker itself ------------------------------------------------------------------------------

def test_slugs_follow_github():
    assert slug("Live transcription: WebSocket `/ws/transcribe`") == "live-transcription-websocket-wstranscribe"
    assert slug("The export contract") == "the-export-contract"
    assert slug("Resume, reproducibility & reports") == "resume-reproducibility--reports"
    assert slug("snake_case and **bold** [link](x.md)") == "snake_case-and-bold-link"
    assert slug("Über 3.11") == "über-311"


def test_headings_keep_a_hash_inside_and_drop_closing_hashes(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Using C#\n\n## Closed ##\n\n```\n# not a heading\n```\n")
    assert anchors(page) == {"using-c", "closed"}


def test_links_outside_code_only(tmp_path):
    text = "\n".join([
        "[a](a.md) and [b `c`](b.md#x) and ![img](i.png)",
        "`[not](code.md)`",
        "```", "[not](fenced.md)", "```",
        "<!-- [not](comment.md) -->",
        "[web](https://example.com) [title](t.md \"T\")",
    ])
    assert links(text) == ["a.md", "b.md#x", "i.png", "https://example.com", "t.md"]


def test_broken_links_are_found(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    (tmp_path / "other.md").write_text("# Title\n\n## A section\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-section) [ok](other.md#a-section-1) [self](#here)\n\n# Here\n"
                    "[gone](missing.md) [bad](other.md#nowhere)\n")
    problems = broken_links(page)
    assert len(problems) == 2
    assert problems[0].startswith("missing.md: no such file")
    assert problems[1].startswith("other.md#nowhere: no heading")


_COMMIT = re.compile(r"commit `([0-9a-f]{7,40})`")


def named_commits(text: str) -> list[str]:
    """The commits a page names as ``commit `HASH```."""
    return _COMMIT.findall(text)


def test_named_commits_are_in_the_history():
    # a git tag does not travel with the main branch (docs/experiments.md lost ten of them); a commit on main does
    from spokenword.frontend.settings import RETIRED_CODE

    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    named = {c for page in PAGES for c in named_commits(page.read_text(encoding="utf-8"))} | {RETIRED_CODE}
    assert RETIRED_CODE in named_commits((REPO / "docs" / "experiments.md").read_text(encoding="utf-8"))
    shallow = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--is-shallow-repository"],
                             capture_output=True, text=True).stdout.strip() == "true"
    missing = [c for c in sorted(named) if subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{c}^{{commit}}"], capture_output=True).returncode != 0]
    if missing and shallow:
        pytest.skip(f"a shallow clone lacks {', '.join(missing)}")
    assert not missing, f"docs name commits that are not in this repository: {missing}"


def test_named_commits_are_found():
    assert named_commits("at commit `689fd3f69f` and commit `abc` and `1234567`") == ["689fd3f69f"]
