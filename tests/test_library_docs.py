"""Every Python snippet of ``docs/library.md`` runs (issue 12 item 14).

The page's blocks make one program, in order; a block preceded by ``<!-- a program of its
own -->`` is a separate program.  Each program runs in a subprocess (its own reactor), bounded
in time, and must exit 0 and print what the page says it prints.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.processes import spawn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "library.md"
SEPARATE = "<!-- a program of its own -->"
RUN_SECONDS = 240


def programs(text: str) -> list[str]:
    """The page's programs: the story (every ordinary block) first, then the separate ones."""
    story, separate = [], []
    for match in re.finditer(r"(<!-- [^>]* -->\n)?```python\n(.*?)```", text, re.DOTALL):
        (separate.append if match.group(1) == SEPARATE + "\n" else story.append)(
            match.group(2))
    return ["\n\n".join(story), *separate]


def run(program: str, tmp_path: pathlib.Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
    with spawn([sys.executable, "-c", program], cwd=tmp_path, env=env, text=True,
               stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        out, _ = proc.communicate(timeout=RUN_SECONDS)
    assert proc.returncode == 0, out[-4000:]
    return out


def test_the_page_has_a_story_and_an_asyncio_program() -> None:
    """The extraction finds the story (all sections) and the asyncio program."""
    story, *others = programs(PAGE.read_text())
    assert len(others) == 1 and "asyncioreactor.install" in others[0]
    for name in ("def open_node", "async def main", "async def befriend", "async def chat",
                 "async def mail", "task.react"):
        assert name in story


def test_the_story_runs(tmp_path: pathlib.Path) -> None:
    """Sections 1 to 6 as one program: two nodes befriend, chat (typed text verbatim), mail,
    reply, and stop."""
    out = run(programs(PAGE.read_text())[0], tmp_path)
    assert "alice sees bob: online=True, status=3" in out
    assert "bob got: if a<b && c>d: ☕" in out and "bob got: Hello Bob!" in out
    assert "alice got the reply: Re: Minutes" in out
    assert "channel posts: ['Hello']" in out
    assert "forum: [('A thread', False), ('Re: A thread', True)]" in out


def test_the_asyncio_program_runs(tmp_path: pathlib.Path) -> None:
    """The asyncio program starts a node on Twisted's asyncio reactor and stops it."""
    out = run(programs(PAGE.read_text())[1], tmp_path)
    assert "listening on 0.0.0.0:" in out or "listening on 127.0.0.1:" in out
