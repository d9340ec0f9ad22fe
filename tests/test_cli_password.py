"""The password given in RSNODE_PASSWORD does not stay in the running node's environment
(finding 8 of the audit): not in os.environ, not in /proc/<pid>/environ, not in children."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.cli.common import PASSWORD_ENV, password

SECRET = "s3cret-horse-battery"

_CHILD = """
import os, subprocess, sys
from services.cli.password import take_password
got = take_password(sys.argv[1])
with open("/proc/self/environ", "rb") as f:
    block = f.read()
child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get(%r, ''))"
                        % sys.argv[1]], capture_output=True, text=True, check=True).stdout
print(got, sys.argv[2].encode() in block, sys.argv[1] in os.environ, repr(child.strip()))
"""


def test_password_leaves_the_process_environment() -> None:
    """A process that took the password returns it, and neither its /proc environ block, its
    os.environ nor a child it starts holds it afterwards."""
    env = dict(os.environ, **{PASSWORD_ENV: SECRET})
    out = subprocess.run([sys.executable, "-c", _CHILD, PASSWORD_ENV, SECRET], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == [SECRET, "False", "False", "''"]


def test_run_takes_the_password_out_of_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`rsnode run` reads its password with ``take=True``: the variable is gone after, while
    the one-shot commands (``take`` unset) leave it for the next command of a script."""
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    assert password() == SECRET
    assert os.environ[PASSWORD_ENV] == SECRET
    assert password(take=True) == SECRET
    assert PASSWORD_ENV not in os.environ
