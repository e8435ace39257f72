"""The examples of README.md and docs/*.md, run.

Every ```console or ```text block that shows a terminal session is either replayed here (its
`$ ...` command lines run through a shell, with `fidelio` being this checkout's command, on a
fresh database) or listed in NOT_REPLAYED with the reason. A new example that is neither fails
`test_every_console_example_is_replayed_or_explained`. Chat examples are console sessions
(`printf ... | fidelio chat`), so they run through the console channel.

Outputs must match in substance: blank lines and trailing spaces are ignored, a line `...`
stands for any number of lines, the checkout's folder is shown as `/path/to/fidelio` (the pages:
"shortened here"), and in the demo tour's examples, which happen now, dates and times are
compared as dates and times.

Every command line of a ```sh block is checked without running it (most need a real Telegram,
Slack or PostgreSQL): a `fidelio` line must parse with the real command line (every command and
option exists, every value converts) and its `--help` must work; a `make` line must name targets
of the Makefile; an `export` must set a variable the shipped config.yaml reads. The generated
references (docs/configuration.md, command-line.md, chat-commands.md) are checked by
tests/test_reference_docs.py instead.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from bot.cli.main import app
from bot.clock import ManualClock
from bot.console_session import console_person
from bot.db.session import Database
from bot.loyalty.metrics import enps, enps_interval, person_index, segment, wilson
from bot.pulse.content import load_survey
from bot.reference.pages import CHAT_COMMANDS, COMMAND_LINE, CONFIGURATION

from .harness import REPO, STRONG_KEY, ConsoleDialog, console_runtime, make_settings
from .test_summaries_e2e import seed

README = REPO / "README.md"
GENERATED = {CONFIGURATION, COMMAND_LINE, CHAT_COMMANDS}


def documents() -> list[Path]:
    """README.md and every hand-written page of docs/."""
    pages = sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in GENERATED)
    return [README, *pages]


def name_of(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@dataclass
class Step:
    command: str
    expected: list[str]


@dataclass
class Block:
    document: str  # README.md, docs/hr-guide.md, ...
    line: int  # of the opening fence, counting from 1
    kind: str
    section: str  # the heading it is under
    lines: list[str]
    steps: list[Step] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.steps[0].command if self.steps else self.lines[0]

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of one Markdown file (indented ones in list items too), with the
    heading it is under and its lines, the fence's indentation removed."""
    blocks: list[Block] = []
    current: Block | None = None
    indent = ""
    section = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if current is None:
            if match:
                indent = match.group(1)
                current = Block(name_of(path), number, match.group(2), section, [])
            elif line.startswith("#"):
                section = line.lstrip("#").strip()
            continue
        if match and match.group(2) == "":
            blocks.append(current)
            current = None
            continue
        current.lines.append(line[len(indent) :] if line.startswith(indent) else line)
    return blocks


def console_blocks() -> list[Block]:
    """The ```console and ```text blocks of every page, with their commands and outputs."""
    blocks = []
    for path in documents():
        for block in fenced_blocks(path):
            if block.kind not in ("console", "text"):
                continue
            for text in block.lines:
                if text.startswith("$ "):
                    block.steps.append(Step(text[2:], []))
                elif block.steps:
                    block.steps[-1].expected.append(text)
            blocks.append(block)
    return blocks


def preceding_block(block: Block, kind: str) -> str:
    """The text of the ```kind block that ends closest above ``block`` in its page."""
    before = [
        b for b in fenced_blocks(REPO / block.document) if b.kind == kind and b.line < block.line
    ]
    return "\n".join(before[-1].lines) + "\n"


#: Examples that cannot be replayed on a fresh demo database, and why:
#: (page, section, first line).
NOT_REPLAYED = {
    ("docs/hr-guide.md", "Scheduling and following a pulse", "fidelio survey list"): (
        "the round is open only from 4 January 2027 (the shipped cadence); its figures need "
        "that date to have come"
    ),
    (
        "docs/manager-guide.md",
        "Loyalty summaries",
        "Loyalty summary: the organisation (latest round 1 Feb 2027; 3 of 3 rounds reportable)",
    ): (
        "needs three closed rounds answered by the demo people: "
        "test_the_loyalty_summary_example_is_what_summary_answers writes them and compares"
    ),
    ("docs/hr-guide.md", "The web console", "-- Web console: http://127.0.0.1:8080"): (
        "printed by the interactive `fidelio run` at start-up with a fresh link each time; "
        "tests/test_web_browser.py signs in with the link the console prints"
    ),
}

#: Replayed groups: each runs on a fresh database, `setup` first (unchecked), then its blocks
#: in the order listed here. A block belongs to a group by its page, its section heading and
#: its first command.
GROUPS: dict[str, dict[str, list[Any]]] = {
    "quick start": {
        "setup": [],
        "blocks": [
            (
                "docs/getting-started.md",
                "A console session",
                ".venv/bin/fidelio db upgrade && .venv/bin/fidelio demo load",
            ),
            ("docs/getting-started.md", "A console session", "printf 'language en\\nstatus\\n'"),
            (
                "README.md",
                "Five minutes: a briefing and a pulse now",
                ".venv/bin/fidelio demo tour",
            ),
            ("README.md", "Five minutes: a briefing and a pulse now", "printf ':as aisha.khan"),
        ],
    },
    "people import": {
        "setup": ["fidelio demo load"],
        "blocks": [("docs/hr-guide.md", "The people CSV file", "fidelio people import bad.csv")],
    },
    "briefings": {
        "setup": ["fidelio db upgrade", "fidelio demo load"],
        "blocks": [
            ("docs/hr-guide.md", "Scheduling and following a campaign", "fidelio content check")
        ],
    },
    "briefing problems": {
        "setup": [],
        "blocks": [("docs/content-authoring.md", "Writing a briefing", "fidelio content check")],
    },
    "pulse surveys": {
        "setup": ["fidelio db upgrade", "fidelio demo load"],
        "blocks": [
            ("docs/hr-guide.md", "Scheduling and following a pulse", "fidelio content check")
        ],
    },
}


def matches(block: Block, place: tuple[str, str, str]) -> bool:
    document, section, prefix = place
    return (block.document, block.section) == (document, section) and block.key.startswith(prefix)


def group_blocks(name: str) -> list[Block]:
    """The blocks of group ``name``, in the order GROUPS lists them."""
    blocks = console_blocks()
    return [b for place in GROUPS[name]["blocks"] for b in blocks if matches(b, place)]


def group_of(block: Block) -> str | None:
    for name, group in GROUPS.items():
        if any(matches(block, place) for place in group["blocks"]):
            return name
    return None


def test_every_console_example_is_replayed_or_explained() -> None:
    blocks = console_blocks()
    unknown = [
        f"{b.where}: [{b.section}] {b.key}"
        for b in blocks
        if group_of(b) is None and (b.document, b.section, b.key) not in NOT_REPLAYED
    ]
    assert not unknown, "console examples neither replayed nor explained:\n" + "\n".join(unknown)
    for name, group in GROUPS.items():
        found = group_blocks(name)
        assert len(found) == len(group["blocks"]), f"group {name}: the pages have {len(found)}"
    explained = {(b.document, b.section, b.key) for b in blocks}
    assert set(NOT_REPLAYED) <= explained, "NOT_REPLAYED names examples no page has"


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
                f"{where}: the page's output does not match.\n--- page\n"
                + "\n".join(piece)
                + "\n--- actual\n"
                + "\n".join(actual[position:])
            )
        position = found + len(piece)
    if pieces[-1] and position != len(actual):
        raise AssertionError(
            f"{where}: more output than the page shows:\n" + "\n".join(actual[position:])
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
    """The complete example briefing of docs/content-authoring.md with the mistakes its text
    lists, in a content folder of its own: `kind: promo`, the role `cashier`, `correct: 3` in both questions, the reminder
    `48h after launch` and no `::: it` section."""
    example = group_blocks("briefing problems")[0]
    text = preceding_block(example, "markdown")
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
def test_console_examples_replay(group: str, database_url: str, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    content_dir = REPO / "content"
    paths = {str(REPO): "/path/to/fidelio"}
    if group == "briefing problems":
        content_dir = briefing_with_problems(workdir)
        paths = {f"{workdir}/": ""}
    config = write_config(tmp_path / "config.yaml", database_url, content_dir)
    install_fidelio(tmp_path / "bin", config)
    blocks = group_blocks(group)
    if group == "people import":
        (workdir / "bad.csv").write_text(preceding_block(blocks[0], "csv"), encoding="utf-8")
    for command in GROUPS[group]["setup"]:
        shell(command, workdir, tmp_path / "bin")
    for block in blocks:
        dated_now = any("demo tour" in s.command or ":as " in s.command for s in block.steps)
        for step in block.steps:
            actual = shell(step.command, workdir, tmp_path / "bin").splitlines()
            assert_matches(
                normalise(step.expected, dated_now=dated_now, paths={}),
                normalise(actual, dated_now=dated_now, paths=paths),
                f"{block.where}: $ {step.command}",
            )


# Command lines of ```sh blocks: checked, not run

FIDELIO = ("fidelio", ".venv/bin/fidelio")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass
class CommandLine:
    where: str
    words: list[str]


def sh_command_lines() -> list[CommandLine]:
    """Every command line of every ```sh block, split as the shell would (comments dropped,
    quotes removed, `VAR=value` prefixes kept)."""
    found = []
    for path in documents():
        for block in fenced_blocks(path):
            if block.kind != "sh":
                continue
            for offset, line in enumerate(block.lines, 1):
                words = shlex.split(line, comments=True)
                if words:
                    found.append(CommandLine(f"{block.where}+{offset}", words))
    return found


def resolve(words: list[str]) -> typer.Context:
    """Parse ``words`` (after `fidelio`) with the real command line, down to the command they
    name: unknown commands and options, missing or bad values raise usage errors."""
    command: Any = typer.main.get_command(app)
    args = list(words)
    context = command.make_context("fidelio", args)
    while hasattr(command, "resolve_command"):  # a group of commands
        # A group parses its own options and keeps the subcommand's name and what follows.
        rest = args[len(args) - len(context.args) - 1 :]
        name, sub, args = command.resolve_command(context, rest)
        assert sub is not None and name is not None, words
        command, context = sub, sub.make_context(name, args, parent=context)
    return context


def command_path(context: typer.Context) -> list[str]:
    return context.command_path.split()[1:]


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.MULTILINE))


def config_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (REPO / "config.yaml").read_text()))


def check_command_line(line: CommandLine, runner: CliRunner) -> None:
    words = line.words
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    head, args = words[0], words[1:]
    if head == "export":
        name = args[0].split("=", 1)[0]
        assert name in config_variables() or "__" in name, (
            f"{line.where}: config.yaml does not read ${{{name}}}"
        )
    elif head == "make":
        targets = [a for a in args if not ASSIGNMENT.match(a)]
        unknown = set(targets) - makefile_targets()
        assert not unknown, f"{line.where}: no such make target {unknown}"
    elif head in FIDELIO:
        try:
            context = resolve(args)
        except typer.TyperException as error:  # click's usage errors
            raise AssertionError(f"{line.where}: {shlex.join(words)}: {error}") from error
        result = runner.invoke(app, [*command_path(context), "--help"])
        assert result.exit_code == 0, f"{line.where}: --help failed: {result.output}"
    else:
        assert (REPO / head).is_file() and os.access(REPO / head, os.X_OK), (
            f"{line.where}: {head} is neither fidelio, make, export nor a script of the repository"
        )


def test_every_command_line_of_the_pages_parses() -> None:
    lines = sh_command_lines()
    assert len(lines) > 20, "the sh blocks of the pages were not found"
    runner = CliRunner()
    for line in lines:
        check_command_line(line, runner)


def test_a_wrong_option_or_command_in_a_page_would_be_caught() -> None:
    runner = CliRunner()
    for words in (["fidelio", "people", "invite", "--tema", "X"], ["fidelio", "campain", "list"]):
        with pytest.raises(AssertionError):
            check_command_line(CommandLine("example", words), runner)
    with pytest.raises(AssertionError):
        check_command_line(CommandLine("example", ["make", "deploy"]), runner)


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"


def test_measurement_worked_examples() -> None:
    """The worked examples of docs/measurement.md, computed by the code that computes figures."""
    page = (REPO / "docs" / "measurement.md").read_text(encoding="utf-8")
    low, high = wilson(7, 10) or (0.0, 0.0)
    assert f"{low:.1f} … {high:.1f}" in page  # 39.7 … 89.2
    assert enps(5, 2, 10) == 30.0 and "**+30**" in page
    low, high = enps_interval(5, 2, 10) or (0.0, 0.0)
    assert f"−{-low:.1f} … +{high:.1f}" in page  # −19.1 … +65.2
    _, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
    index_items = {k: items[k] for k in ("sat_overall", "intent_stay", "trust_leadership")}
    index_items["frustration"] = items["frustration"]
    answers = {"sat_overall": 4, "intent_stay": 5, "trust_leadership": 3, "frustration": 2}
    assert person_index(answers, index_items) == 75.0 and "mean **75**" in page
    assert person_index({"sat_overall": 4, "intent_stay": 5}, index_items) is None
    assert segment(4, 4, 9, 4) == "apostle"
    assert segment(2, 2, 5, 4) == "loose_cannon"
    assert segment(3, 2, None, 4) == "disloyal_unknown"


async def test_the_loyalty_summary_example_is_what_summary_answers(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    """The summary shown in docs/manager-guide.md is HR's `summary`, in English, after three
    closed rounds of the demo organisation (the rounds tests/test_summaries_e2e.py writes)."""
    (example,) = [b for b in console_blocks() if b.key.startswith("Loyalty summary:")]
    await seed(db, clock, database_url, rounds=3)
    hr = "hr@demo.fidelio.example"
    settings = make_settings(database_url, console={"enabled": True})
    async with console_runtime(settings, clock) as runtime:
        await console_person(runtime, hr)
        runtime.channels["console"].image_dir = tmp_path
        dialog = ConsoleDialog(runtime, hr)
        await dialog.say("language en")
        answer = await dialog.say("summary")
    shown = [line.removeprefix("fidelio>").strip() for line in answer.splitlines()]
    expected = [line.strip() for line in example.lines if line.strip()]
    start = shown.index(expected[0])
    assert shown[start : start + len(expected)] == expected, answer
