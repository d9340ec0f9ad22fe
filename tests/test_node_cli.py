"""``rsnode run``, ``status`` and ``demo``: the demo's story, the status text, and a real
``rsnode run`` process answering ``rsnode status`` over the control channel."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from services.cli.node import format_status, run_demo
from services.node.control_channel import CONTROL_FILE
from services.node.node import NET_FILE
from tests.processes import spawn
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.slow]


def test_demo_tells_the_story(tmp_path) -> None:
    """The demo creates three nodes, shows alice learning carol through bob (pending), then
    alice and carol connected directly, and stops them all."""
    out = io.StringIO()

    async def body(reactor):
        await run_demo(reactor, out, tmp_path)

    on_fresh_reactor(body, 90)
    text = out.getvalue()
    assert "alice ⇄ bob connected" in text and "bob ⇄ carol connected" in text
    assert "alice learned about carol" in text and "waits for alice's approval" in text
    assert "alice ⇄ carol connected directly" in text
    assert text.rstrip().endswith("done.")
    assert text.index("learned about carol") < text.index("carol connected directly")


def test_status_shows_online_rtt_and_failed_attempts(tmp_path) -> None:
    """The status text names an online friend with its RTT and an offline friend with its
    recent attempts and why they failed."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        gone = make_node(reactor, tmp_path, "carol")
        await a.startService()
        await b.startService()
        await gone.startService()
        carol_cert = cert_of(gone)
        await gone.stopService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            a.add_friend(carol_cert)
            await wait_for(reactor, lambda: a.rtt.stats(b.ssl_id) is not None and any(
                f.attempts for f in a.friends() if f.name == "carol"))
            return a.status_report()
        finally:
            await a.stopService()
            await b.stopService()

    report = on_fresh_reactor(body, 60)
    json.dumps(report)  # the control channel must be able to carry it
    text = format_status(report)
    bob_line = next(line for line in text.splitlines() if "bob/bob-loc" in line)
    assert "online" in bob_line and "rtt" in bob_line and "ms" in bob_line
    carol = text[text.index("carol/carol-loc"):]
    assert "offline" in carol.splitlines()[0]
    assert "connection refused" in carol


def _rsnode(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_rsnode_run_and_status(tmp_path) -> None:
    """A real ``rsnode run`` process: its address is recorded in the account directory,
    ``rsnode status`` reads its state through the control channel, and Ctrl-C stops it
    cleanly (control file removed)."""
    env = dict(os.environ, RSNODE_PASSWORD="test-password")
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    base = tmp_path / "acct"
    init = _rsnode("init", "--base-dir", str(base), "--name", "zoe", "--location", "laptop",
                   "--bits", "2048", env=env)
    assert init.returncode == 0, init.stderr
    with spawn([sys.executable, "-m", "services.cli", "run", "--base-dir", str(base),
                "--port", "0", "--interface", "127.0.0.1"], env=env,
               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for _ in range(600):
            if (base / CONTROL_FILE).exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert (base / CONTROL_FILE).exists(), proc.stdout.read() if proc.poll() else ""
        status = _rsnode("status", "--base-dir", str(base), env=env)
        port = json.loads((base / NET_FILE).read_text())["port"]
        proc.send_signal(signal.SIGINT)  # Ctrl-C; `spawn` kills it if this is not enough
        output, _ = proc.communicate(timeout=30)
    assert status.returncode == 0, status.stderr
    assert "zoe (laptop" in status.stdout and f"127.0.0.1:{port}" in status.stdout
    assert "no friends yet" in status.stdout
    assert proc.returncode == 0
    assert f"listening on 127.0.0.1:{port}" in output
    assert not (base / CONTROL_FILE).exists()


def test_status_without_node(tmp_path) -> None:
    """``rsnode status`` on a directory with no account says there is none (exit 2), not
    that the node is not running."""
    env = dict(os.environ, RSNODE_PASSWORD="x")
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    result = _rsnode("status", "--base-dir", str(tmp_path), env=env)
    assert result.returncode == 2 and "no account" in result.stderr
    assert "rsnode init" in result.stderr and "rsnode run" not in result.stderr
