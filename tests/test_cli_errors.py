"""Every CLI failure is one line on stderr and a documented exit code (issue 12 items 5, 11,
12): prompts interrupted, closed pipes, read-only and impossible paths, unclear messages."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from services.cli import common as cli_common
from services.cli import transfer as cli_transfer
from services.cli.common import (
    BASE_DIR_ENV,
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_RUNNING,
    EXIT_USAGE,
    PASSWORD_ENV,
)
from services.cli.rsnode import build_parser, main, version

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "pw"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One account (loopback, 2048-bit keys), made once; tests copy it."""
    base = tmp_path_factory.mktemp("errors") / "acct"
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        assert main(["--base-dir", str(base), "init", "--name", "zoe", "--location", "pc",
                     "--bits", "2048", "--interface", "127.0.0.1"]) == 0
    finally:
        del os.environ[PASSWORD_ENV]
    return base


@pytest.fixture
def account(template: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    shutil.copytree(template, tmp_path / "acct")
    return tmp_path / "acct"


def one_line_error(err: str) -> str:
    """The stderr of a failed command: exactly one ``rsnode: ...`` line, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rsnode: "), err
    return lines[0]


def test_ctrl_c_and_ctrl_d_at_the_password_prompt(account, monkeypatch, capsys) -> None:
    """Ctrl-C (KeyboardInterrupt) or Ctrl-D (EOFError) at the prompt: one line, exit 130."""
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    for signal_like in (KeyboardInterrupt, EOFError):
        def prompt(_: str, error=signal_like) -> str:
            raise error
        monkeypatch.setattr(cli_common.getpass, "getpass", prompt)
        assert main(["--base-dir", str(account), "run"]) == EXIT_INTERRUPTED
        assert "interrupted" in one_line_error(capsys.readouterr().err)


def test_ctrl_c_in_files_transfers(account, monkeypatch, capsys) -> None:
    """Ctrl-C while ``files transfers`` refreshes: one line, exit 130."""
    monkeypatch.setattr(cli_transfer, "_call", lambda *a: [])

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_transfer.time, "sleep", interrupted)
    assert main(["--base-dir", str(account), "files", "transfers"]) == EXIT_INTERRUPTED
    one_line_error(capsys.readouterr().err)


def test_closed_pipe_is_quiet(account) -> None:
    """``rsnode friend list | head -0``: the reader is gone; no BrokenPipeError traceback,
    exit 141."""
    read, write = os.pipe()
    os.close(read)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run([sys.executable, "-m", "services.cli", "--base-dir",
                               str(account), "friend", "list"], stdout=write,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(write)
    assert done.returncode == EXIT_BROKEN_PIPE and done.stderr == ""


def test_init_under_a_file(tmp_path, monkeypatch, capsys) -> None:
    """``init`` on a path below a regular file names the file; exit 2."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    (tmp_path / "plain").write_text("x")
    code = main(["--base-dir", str(tmp_path / "plain" / "acct"), "init", "--name", "a",
                 "--location", "b", "--bits", "2048"])
    assert code == EXIT_USAGE
    assert "is a file" in one_line_error(capsys.readouterr().err)


@contextlib.contextmanager
def read_only(path: pathlib.Path):
    """``path`` as a small tmpfs that is remounted read-only (CI runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_read_only_file_systems(template, tmp_path, monkeypatch, capsys) -> None:
    """On a read-only file system ``init``, ``run`` and ``friend add`` fail with one line
    naming the problem and exit 1 (no sqlite or OSError traceback)."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    bob = tmp_path / "bob"
    assert main(["--base-dir", str(bob), "init", "--name", "bob", "--location", "pc",
                 "--bits", "2048", "--interface", "127.0.0.1"]) == 0
    capsys.readouterr()
    assert main(["--base-dir", str(bob), "cert"]) == 0
    bob_cert = capsys.readouterr().out.strip()
    with read_only(tmp_path / "ro") as ro:
        shutil.copytree(template, ro / "acct")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        cases = [(["init", "--name", "x", "--location", "y", "--bits", "2048"], ro / "new"),
                 (["run"], ro / "acct"),
                 (["friend", "add", bob_cert], ro / "acct")]
        for argv, base in cases:
            code = main(["--base-dir", str(base), *argv])
            line = one_line_error(capsys.readouterr().err)
            assert code == EXIT_FAILURE, (argv, line)
            assert "read-only" in line.lower() or "readonly" in line.lower(), line


def test_messages_name_the_problem(account, tmp_path, capsys) -> None:
    """Item 12: a missing certificate file, an empty certificate, ``status`` without an
    account or without a node: each message says what is wrong."""
    cases = [
        (["friend", "add", str(tmp_path / "bob.cert.txt")], account, "no certificate file",
         EXIT_USAGE),
        (["friend", "add", ""], account, "certificate is empty", EXIT_USAGE),
        (["friend", "add", "   "], account, "certificate is empty", EXIT_USAGE),
        (["status"], tmp_path / "nothing", "no account in", EXIT_USAGE),
        (["status"], account, "no node is running", EXIT_NOT_RUNNING),
        (["chat", "zoe", "hi"], account, "start it with `rsnode run`", EXIT_NOT_RUNNING),
        (["friend", "approve", "mallory"], account, "no pending certificate called 'mallory'",
         EXIT_USAGE),
    ]
    for argv, base, expected, code in cases:
        assert main(["--base-dir", str(base), *argv]) == code, argv
        assert expected in one_line_error(capsys.readouterr().err), argv


def test_empty_chat_message_refused(account, capsys) -> None:
    """An empty (or blank) chat message is refused before asking the node."""
    assert main(["--base-dir", str(account), "chat", "bob", " "]) == EXIT_USAGE
    assert "empty message" in one_line_error(capsys.readouterr().err)


def test_base_dir_before_after_and_from_the_environment(account, monkeypatch) -> None:
    """``--base-dir`` works before or after the subcommand (after wins), and
    RSNODE_BASE_DIR is the default."""
    parser = build_parser()
    assert parser.parse_args(["--base-dir", "/x", "friend", "list"]).base_dir == \
        pathlib.Path("/x")
    assert parser.parse_args(["friend", "list", "--base-dir", "/y"]).base_dir == \
        pathlib.Path("/y")
    assert parser.parse_args(["--base-dir", "/x", "status", "--base-dir", "/y"]).base_dir == \
        pathlib.Path("/y")
    monkeypatch.setenv(BASE_DIR_ENV, str(account))
    assert build_parser().parse_args(["cert"]).base_dir == account
    assert main(["cert"]) == 0


def test_version(capsys) -> None:
    """``rsnode --version`` prints the package version."""
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"rsnode {version()}"
    assert version() != "unknown"


def _subcommands(parser, path=()):
    import argparse
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def test_every_subcommand_and_option_is_described() -> None:
    """Item 11: every subcommand has a description, every option and argument a help text;
    ``--bootstrap`` is HOST:PORT in both ``run`` and ``dht``."""
    import argparse
    parser = build_parser()
    missing = []
    for path, sub in _subcommands(parser):
        if not sub.description:
            missing.append(" ".join(path))
        for action in sub._actions:  # noqa: SLF001
            if action.help or isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                continue
            missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    run = dict(_subcommands(parser))[("run",)]
    dht = dict(_subcommands(parser))[("dht",)]
    for p in (run, dht):
        (boot,) = [a for a in p._actions if "--bootstrap" in a.option_strings]  # noqa: SLF001
        assert boot.metavar == "HOST:PORT"


def test_log_lines_are_readable_and_quiet() -> None:
    """Item 13: one ``HH:MM:SS message`` format; Twisted's per-port and per-connection
    chatter ("Starting factory <...>", "... starting on 7812", "(TCP Port 7812 Closed)") is
    left out, the node's own lines and warnings stay."""
    import io

    from twisted.logger import Logger, LogPublisher

    from pqi.logs import readable_observer
    out = io.StringIO()
    publisher = LogPublisher(readable_observer(out))
    logger = Logger(observer=publisher)
    for text in ("Starting factory <pqi.netinterface._StreamerFactory object at 0x7f>",
                 "_GateFactory (TLS) (_WireFactory) starting on 57323",
                 "(TCP Port 57323 Closed)", "(UDP Port 57324 Closed)",
                 "Starting protocol <dht.protocol.DHTProtocol object at 0x7f>"):
        logger.info("{log_text}", log_text=text)  # the shape legacy log.msg events have
    logger.info("link to {peer} up", peer="ab12")
    logger.warn("refused {peer}", peer="cd34")
    lines = out.getvalue().splitlines()
    assert [line[9:] for line in lines] == ["link to ab12 up", "WARN: refused cd34"]
    assert all(line[2] == ":" and line[5] == ":" and line[8] == " " for line in lines)


def test_log_lines_escape_what_the_output_cannot_encode() -> None:
    """A line holding a friend's bytes that are not UTF-8 (lone surrogates) is written with
    them escaped on a strict UTF-8 output, and non-ASCII text is escaped on an ASCII one:
    the line is kept, the observer never raises."""
    import io

    from twisted.logger import Logger, LogPublisher

    from pqi.logs import readable_observer
    junk = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    for encoding, expected in (("utf-8", "from caf\\udce9 \\udcff \u00e9"),
                               ("ascii", "from caf\\udce9 \\udcff \\xe9")):
        raw = io.BytesIO()
        out = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="\n")
        logger = Logger(observer=LogPublisher(readable_observer(out)))
        logger.info("from {name}", name=junk + " \u00e9")
        line = raw.getvalue().decode(encoding).rstrip("\n")
        assert line[9:] == expected


def test_docs_cli_covers_every_command_and_exit_code() -> None:
    """``docs/cli.md`` names every subcommand and every exit code `services.cli.common`
    defines."""
    page = (ROOT / "docs" / "cli.md").read_text()
    for path, _ in _subcommands(build_parser()):
        assert f"{' '.join(path)} " in page or f"{' '.join(path)}`" in page, path
    for name in dir(cli_common):
        if name.startswith("EXIT_"):
            assert f"\n| {getattr(cli_common, name)} |" in page, name


def test_cert_needs_no_password(account, monkeypatch, capsys) -> None:
    """Item 11: ``cert`` prints the public certificate without asking for the password, with
    the account's loopback address and port."""
    from pqi.identity.certificate import RsCertificate
    from services.node.netsettings import NetworkSettings

    monkeypatch.delenv(PASSWORD_ENV, raising=False)

    def no_prompt(_: str) -> str:
        raise AssertionError("cert asked for the password")
    monkeypatch.setattr(cli_common.getpass, "getpass", no_prompt)
    assert main(["--base-dir", str(account), "cert"]) == 0
    cert = RsCertificate.decode(capsys.readouterr().out)
    settings = NetworkSettings.load(account)
    assert str(cert.local_addr) == f"127.0.0.1:{settings.port}" and cert.location == "pc"


@pytest.mark.parametrize("keep", [False, True])
def test_demo_says_what_happens_to_its_folder(monkeypatch, capsys, keep: bool) -> None:
    """Item 15: the demo's folder is removed at the end and the last line says so, or kept
    with --keep (and the line says where)."""
    from services.cli import node as cli_node
    made = []

    async def quick_demo(reactor, out, workdir):
        (workdir / "carol-share").mkdir()
        made.append(workdir)
    monkeypatch.setattr(cli_node, "run_demo", quick_demo)

    def react(main_function) -> None:  # the quick demo needs no running reactor
        done = []
        main_function(None).addBoth(done.append)
        assert done == [None]
    from twisted.internet import task  # what the demo runs its reactor with
    monkeypatch.setattr(task, "react", react)
    assert main(["demo", *(["--keep"] if keep else [])]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    (workdir,) = made
    assert str(workdir) in last
    if keep:
        assert "stay in" in last and (workdir / "carol-share").is_dir()
        shutil.rmtree(workdir)
    else:
        assert "removed" in last and "--keep" in last and not workdir.exists()
