"""Every relative link of README.md, SECURITY.md and docs/*.md resolves: the file or folder
exists, and a `#anchor` names a heading (or an `<a id>`) of the page it points to, by GitHub's
rules for heading anchors."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from .harness import REPO

FENCE = re.compile(r"^\s*```")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE_TAG = re.compile(r"<img\s[^>]*src=\"([^\"]+)\"")
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def pages() -> list[Path]:
    return [REPO / "README.md", REPO / "SECURITY.md", *sorted((REPO / "docs").glob("*.md"))]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a Markdown file outside fenced code blocks, with their numbers."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the rendered text (links by their text, code and
    emphasis markers dropped) in lower case, punctuation removed, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").replace("*", "").lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a page: its headings (a repeated one gets -1, -2, ...) and `<a id>`s."""
    seen: Counter[str] = Counter()
    found = set()
    for _, line in prose_lines(path):
        found.update(EXPLICIT_ANCHOR.findall(line))
        match = HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return found


def broken_links(path: Path) -> list[str]:
    """``path:line: target (why)`` for every relative link of ``path`` that does not resolve."""
    broken = []
    for number, line in prose_lines(path):
        text = INLINE_CODE.sub("", line)
        for target in LINK.findall(text) + IMAGE_TAG.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.name if not path.is_relative_to(REPO) else path.relative_to(REPO)}:{number}: {target}"
            if not linked.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{where} (no such heading in {linked.name})")
    return broken


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = [problem for page in pages() for problem in broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_pages_have_links_to_check() -> None:
    docs = {p.name for p in (REPO / "docs").glob("*.md")}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(readme)}
    missing = docs - linked - {"README.md"}
    assert not missing, f"README.md does not link to docs/{', docs/'.join(sorted(missing))}"


def test_slugs_follow_githubs_rules(tmp_path: Path) -> None:
    assert github_slug("Five minutes: a briefing and a pulse now") == (
        "five-minutes-a-briefing-and-a-pulse-now"
    )
    assert github_slug("Rounds: opening, reminders, closing") == "rounds-opening-reminders-closing"
    assert github_slug("A person's data") == "a-persons-data"
    assert github_slug("content_dir") == "content_dir"
    assert github_slug("`fidelio run` and [TLS](x.md)") == "fidelio-run-and-tls"
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Same\n\n## Same\n\n```\n# not a heading\n```\n"
        "[ok](#same-1) [bad](#not-a-heading) [gone](missing.md) [web](https://x.example/#y)\n",
        encoding="utf-8",
    )
    assert anchors(page) == {"title", "same", "same-1"}
    problems = broken_links(page)
    assert len(problems) == 2 and "#not-a-heading" in problems[0] and "missing.md" in problems[1]


TEST_NAME = re.compile(r"`(test_\w+\.py)::(test_\w+)`")


def test_every_test_security_md_names_exists() -> None:
    """SECURITY.md shows each promise with its tests: each named test is defined in the file
    it names (a renamed or removed test would leave a promise shown by nothing)."""
    named = TEST_NAME.findall((REPO / "SECURITY.md").read_text(encoding="utf-8"))
    assert len(named) > 50
    missing = [
        f"{file}::{test}"
        for file, test in named
        if not (REPO / "tests" / file).is_file()
        or not re.search(
            rf"^(async )?def {test}\(", (REPO / "tests" / file).read_text(encoding="utf-8"), re.M
        )
    ]
    assert missing == []
