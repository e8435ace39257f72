"""README's console examples, replayed.

Every ```console or ```text block of README.md that shows a terminal session is either replayed
here (its `$ ...` command lines run through a shell, with `fidelio` being this checkout's
command, on a fresh database) or listed in NOT_REPLAYED with the reason. A new example that is
neither fails `test_every_console_example_is_replayed_or_explained`.

Outputs must match in substance: blank lines and trailing spaces are ignored, a README line
`...` stands for any number of lines, the checkout's folder is shown as `/path/to/fidelio`
(README: "shortened here"), and in the demo tour's examples, which happen now, dates and times
are compared as dates and times.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import REPO, STRONG_KEY

README = REPO / "README.md"


@dataclass
class Step:
    command: str
    expected: list[str]


@dataclass
class Block:
    line: int  # of the opening fence, counting from 1
    kind: str
    section: str  # the heading it is under
    lines: list[str]
    steps: list[Step] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.steps[0].command if self.steps else self.lines[0]


def readme_blocks() -> list[Block]:
    """The ```console and ```text blocks of README, with their commands and outputs."""
    blocks: list[Block] = []
    current: Block | None = None
    section = ""
    fenced = False
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if current is None:
            match = re.match(r"^```(console|text)\s*$", line)
            if match:
                current = Block(number, match.group(1), section, [])
            elif line.startswith("```"):
                fenced = not fenced
            elif not fenced and line.startswith("#"):
                section = line.lstrip("#").strip()
            continue
        if line.startswith("```"):
            for text in current.lines:
                if text.startswith("$ "):
                    current.steps.append(Step(text[2:], []))
                elif current.steps:
                    current.steps[-1].expected.append(text)
            blocks.append(current)
            current = None
            continue
        current.lines.append(line)
    return blocks


def preceding_block(fence_line: int, kind: str) -> str:
    """The text of the ```kind block that ends closest above ``fence_line``."""
    lines = README.read_text(encoding="utf-8").splitlines()[: fence_line - 1]
    end = max(i for i, text in enumerate(lines) if text.startswith("```") and i > 0)
    start = max(i for i in range(end) if lines[i].strip() == f"```{kind}")
    return "\n".join(lines[start + 1 : end]) + "\n"


#: Examples that cannot be replayed on a fresh demo database, and why: (section, first line).
NOT_REPLAYED = {
    ("Scheduling and following a pulse", "fidelio survey list"): (
        "the round is open only from 4 January 2027 (the shipped cadence); its figures need "
        "that date to have come"
    ),
    (
        "Loyalty measurement",
        "Loyalty summary: the organisation (latest round 1 Feb 2027; 3 of 3 rounds reportable)",
    ): "needs three closed rounds answered by the demo people",
    ("Web console", "-- Web console: http://127.0.0.1:8080"): (
        "printed by the interactive `fidelio run` at start-up with a fresh link each time; "
        "tests/test_web_browser.py signs in with the link the console prints"
    ),
}

#: Replayed groups: each runs on a fresh database, `setup` first (unchecked), then its blocks
#: in README order. A block belongs to a group by its section heading and its first command.
GROUPS: dict[str, dict[str, list[Any]]] = {
    "quick start": {
        "setup": [],
        "blocks": [
            ("A console session", ".venv/bin/fidelio db upgrade && .venv/bin/fidelio demo load"),
            ("A console session", "printf 'language en\\nstatus\\n' | .venv/bin/fidelio chat"),
            ("Five minutes: a briefing and a pulse now", ".venv/bin/fidelio demo tour"),
            ("Five minutes: a briefing and a pulse now", "printf ':as aisha.khan"),
        ],
    },
    "people import": {
        "setup": ["fidelio demo load"],
        "blocks": [("The people CSV file", "fidelio people import bad.csv")],
    },
    "briefings": {
        "setup": ["fidelio db upgrade", "fidelio demo load"],
        "blocks": [("Scheduling and following a campaign", "fidelio content check")],
    },
    "briefing problems": {
        "setup": [],
        "blocks": [("Writing a briefing", "fidelio content check")],
    },
    "pulse surveys": {
        "setup": ["fidelio db upgrade", "fidelio demo load"],
        "blocks": [("Scheduling and following a pulse", "fidelio content check")],
    },
}


def group_of(block: Block) -> str | None:
    for name, group in GROUPS.items():
        for section, prefix in group["blocks"]:
            if block.section == section and block.key.startswith(prefix):
                return name
    return None


def test_every_console_example_is_replayed_or_explained() -> None:
    blocks = readme_blocks()
    unknown = [
        f"README.md:{b.line}: [{b.section}] {b.key}"
        for b in blocks
        if group_of(b) is None and (b.section, b.key) not in NOT_REPLAYED
    ]
    assert not unknown, "console examples neither replayed nor explained:\n" + "\n".join(unknown)
    for name, group in GROUPS.items():
        found = [b for b in blocks if group_of(b) == name]
        assert len(found) == len(group["blocks"]), f"group {name}: README has {len(found)}"


# Replaying

DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?(?:[+-]\d{2}:\d{2})?"
    r"|\d{1,2} [A-Za-z]{3} \d{4}, \d{2}:\d{2}(?: [A-Z]{2,5}\b)?"
)


def normalise(lines: list[str], *, dated_now: bool, paths: dict[str, str]) -> list[str]:
    out = []
    for line in lines:
        for path, shown in paths.items():
            line = line.replace(path, shown)
        if dated_now:
            line = DATE_TIME.sub("<date and time>", line)
        line = line.rstrip()
        if line.strip():
            out.append(line)
    return out


def assert_matches(expected: list[str], actual: list[str], where: str) -> None:
    """``expected`` (with `...` lines as wildcards) must match the whole of ``actual``."""
    pieces: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            pieces.append([])
        else:
            pieces[-1].append(line)
    position = 0
    for index, piece in enumerate(pieces):
        if not piece:
            continue
        if index == 0:
            found = position if actual[: len(piece)] == piece else -1
        else:
            found = next(
                (
                    i
                    for i in range(position, len(actual) - len(piece) + 1)
                    if actual[i : i + len(piece)] == piece
                ),
                -1,
            )
        if found < 0:
            raise AssertionError(
                f"{where}: README's output does not match.\n--- README\n"
                + "\n".join(piece)
                + "\n--- actual\n"
                + "\n".join(actual[position:])
            )
        position = found + len(piece)
    if pieces[-1] and position != len(actual):
        raise AssertionError(
            f"{where}: more output than README shows:\n" + "\n".join(actual[position:])
        )


def shell(command: str, workdir: Path, bin_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIDELIO_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),  # this checkout's code, whatever is installed
        COLUMNS="300",
        TERM="dumb",
    )
    command = command.replace(".venv/bin/fidelio", "fidelio")
    result = subprocess.run(
        ["bash", "-c", command + " 2>&1"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def install_fidelio(bin_dir: Path, config: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "fidelio"
    script.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m bot.cli -c "{config}" "$@"\n', encoding="utf-8"
    )
    script.chmod(0o755)


def write_config(path: Path, database_url: str, content_dir: Path) -> Path:
    data = {
        "database": {"url": database_url},
        "content_dir": str(content_dir),
        "organisation": {"name": "Demo Elettronica SpA"},
        "security": {"secret_key": STRONG_KEY},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def briefing_with_problems(workdir: Path) -> Path:
    """README's complete example briefing with the mistakes its text lists, in a content folder
    of its own: `kind: promo`, the role `cashier`, `correct: 3` in both questions, the reminder
    `48h after launch` and no `::: it` section."""
    example = next(b for b in readme_blocks() if group_of(b) == "briefing problems")
    text = preceding_block(example.line, "markdown")
    assert text.startswith("---\nid: care-plus-2027"), text[:40]
    text = text.replace("kind: promotion", "kind: promo")
    text = text.replace("roles: [employee, manager]", "roles: [employee, cashier]")
    text = text.replace("correct: 2", "correct: 3")
    text = text.replace("48h after briefing", "48h after launch")
    text = text[: text.index("::: it")]
    content = workdir / "content"
    (content / "briefings").mkdir(parents=True)
    (content / "templates").symlink_to(REPO / "content" / "templates")
    (content / "briefings" / "care-plus.md").write_text(text, encoding="utf-8")
    return content


@pytest.mark.parametrize("group", list(GROUPS))
def test_readme_console_examples_replay(group: str, database_url: str, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    content_dir = REPO / "content"
    paths = {str(REPO): "/path/to/fidelio"}
    if group == "briefing problems":
        content_dir = briefing_with_problems(workdir)
        paths = {f"{workdir}/": ""}
    config = write_config(tmp_path / "config.yaml", database_url, content_dir)
    install_fidelio(tmp_path / "bin", config)
    blocks = [b for b in readme_blocks() if group_of(b) == group]
    if group == "people import":
        (workdir / "bad.csv").write_text(preceding_block(blocks[0].line, "csv"), encoding="utf-8")
    for command in GROUPS[group]["setup"]:
        shell(command, workdir, tmp_path / "bin")
    for block in blocks:
        dated_now = any("demo tour" in s.command or ":as " in s.command for s in block.steps)
        for step in block.steps:
            actual = shell(step.command, workdir, tmp_path / "bin").splitlines()
            assert_matches(
                normalise(step.expected, dated_now=dated_now, paths={}),
                normalise(actual, dated_now=dated_now, paths=paths),
                f"README.md:{block.line}: $ {step.command}",
            )
