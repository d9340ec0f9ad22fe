# -*- test-case-name: tests.test_cli_identity -*-
"""``rsnode init / cert / friend``: run in-process through ``main`` and once as a subprocess."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from pqi.identity.account import Account
from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import FriendList, TrustLevel
from pqi.identity.invite import Loc4Locator, ShortInvite
from services.cli import common as cli_common
from services.cli.common import PASSWORD_ENV
from services.cli.identity import FRIENDS_FILE
from services.cli.rsnode import build_parser, main

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "correct horse"


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """Two accounts made once through the CLI (alice, bob); tests work on copies."""
    base = tmp_path_factory.mktemp("cli-accounts")
    env_before = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        for name, loc in (("alice", "laptop"), ("bob", "desktop")):
            assert main(["init", "--base-dir", str(base / name), "--name", name,
                         "--location", loc, "--bits", "2048", "--interface", "127.0.0.1"]) == 0
    finally:
        if env_before is None:
            del os.environ[PASSWORD_ENV]
        else:
            os.environ[PASSWORD_ENV] = env_before
    return {"alice": base / "alice", "bob": base / "bob"}


@pytest.fixture
def accounts(templates: dict[str, pathlib.Path], tmp_path: pathlib.Path,
             monkeypatch: pytest.MonkeyPatch) -> dict[str, pathlib.Path]:
    """Fresh copies of the template accounts, with the password in the environment."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    out = {}
    for name, path in templates.items():
        out[name] = tmp_path / name
        shutil.copytree(path, out[name])
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_init_creates_loadable_account(accounts: dict[str, pathlib.Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``init`` made an account the password unlocks, and an empty friend list beside it."""
    account = Account.load(accounts["alice"], PASSWORD)
    assert account.name == "alice" and account.location_name == "laptop"
    code, out, _ = run(capsys, "friend", "list", "--base-dir", str(accounts["alice"]))
    assert code == 0 and "no friends yet" in out


def test_init_prompts_for_password_twice(tmp_path: pathlib.Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Without RSNODE_PASSWORD, ``init`` asks twice; differing answers are refused."""
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    answers = iter(["one", "two"])
    monkeypatch.setattr(cli_common.getpass, "getpass", lambda prompt: next(answers))
    code, _, err = run(capsys, "init", "--base-dir", str(tmp_path / "x"), "--name", "x",
                       "--location", "y", "--bits", "2048")
    assert code == 2 and "passwords differ" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_init_refuses_non_empty_directory(accounts: dict[str, pathlib.Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An existing account is never overwritten."""
    code, _, err = run(capsys, "init", "--base-dir", str(accounts["alice"]), "--name", "z",
                       "--location", "z", "--bits", "2048")
    assert code == 2 and "not empty" in err
    assert Account.load(accounts["alice"], PASSWORD).name == "alice"


@pytest.mark.slow
def test_cert_prints_our_long_certificate(accounts: dict[str, pathlib.Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``cert`` prints a long certificate with our key, location id and name."""
    account = Account.load(accounts["alice"], PASSWORD)
    code, out, _ = run(capsys, "cert", "--base-dir", str(accounts["alice"]))
    assert code == 0
    cert = RsCertificate.decode(out)
    assert cert.public_key == account.profile.public
    assert cert.ssl_id == account.ssl_id and cert.location == "laptop"


@pytest.mark.slow
def test_cert_short_with_port(accounts: dict[str, pathlib.Path],
                              capsys: pytest.CaptureFixture[str]) -> None:
    """``cert --short --port`` prints an invite naming our fingerprint and 127.0.0.1:PORT."""
    account = Account.load(accounts["alice"], PASSWORD)
    code, out, _ = run(capsys, "cert", "--short", "--port", "7812", "--base-dir",
                       str(accounts["alice"]))
    assert code == 0
    invite = ShortInvite.decode(out)
    assert invite.ssl_id == account.ssl_id
    assert invite.pgp_fingerprint == account.profile.fingerprint
    assert [str(loc.address) for loc in invite.locators if isinstance(loc, Loc4Locator)] == [
        "127.0.0.1:7812"]


def test_wrong_password_and_missing_account(accounts: dict[str, pathlib.Path],
                                            tmp_path: pathlib.Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong password or a missing account is one friendly line and exit status 2."""
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    code, out, err = run(capsys, "run", "--base-dir", str(accounts["alice"]))
    assert (code, out) == (2, "") and err.strip() == "rsnode: error: wrong password"
    for argv in (["cert"], ["friend", "list"], ["friend", "add", "x"]):
        code, _, err = run(capsys, *argv, "--base-dir", str(tmp_path / "nothing"))
        assert code == 2 and "no account in" in err and "Traceback" not in err


@pytest.mark.slow
def test_friend_add_long_certificate_text_and_file(accounts: dict[str, pathlib.Path],
                                                   tmp_path: pathlib.Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A long certificate is accepted as text or from a file, with the chosen trust."""
    bob = Account.load(accounts["bob"], PASSWORD)
    _, text, _ = run(capsys, "cert", "--base-dir", str(accounts["bob"]))
    code, out, _ = run(capsys, "friend", "add", text, "--trust", "marginal", "--base-dir",
                       str(accounts["alice"]))
    assert code == 0 and "added friend bob" in out
    with FriendList(accounts["alice"] / FRIENDS_FILE) as friends:
        assert friends.is_accepted_profile(bob.pgp_id)
        assert friends.profile(bob.pgp_id).trust is TrustLevel.MARGINAL
        assert friends.location(bob.ssl_id).name == "desktop"
    cert_file = tmp_path / "bob.txt"
    cert_file.write_text(text)
    code, out, _ = run(capsys, "friend", "add", str(cert_file), "--base-dir",
                       str(accounts["alice"]))
    assert code == 0
    code, out, _ = run(capsys, "friend", "list", "--ids", "--base-dir", str(accounts["alice"]))
    assert code == 0
    assert f"bob  {bob.pgp_id}" in out and str(bob.ssl_id) in out


@pytest.mark.slow
@pytest.mark.parametrize("form", ["radix", "url"])
def test_friend_add_short_invite(accounts: dict[str, pathlib.Path], form: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A short invite (text or URL) makes an SSL-only friend, listed as such."""
    bob = Account.load(accounts["bob"], PASSWORD)
    invite = bob.short_invite()
    text = invite.encode() if form == "radix" else invite.to_url()
    code, out, _ = run(capsys, "friend", "add", text, "--base-dir", str(accounts["alice"]))
    assert code == 0 and str(bob.ssl_id) in out
    code, out, _ = run(capsys, "friend", "list", "--ids", "--base-dir", str(accounts["alice"]))
    assert "SSL-only" in out and str(bob.ssl_id) in out


@pytest.mark.slow
def test_friend_add_refuses_own_and_bad_certificates(accounts: dict[str, pathlib.Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Our own certificate and a mangled one are refused with status 2; nothing is added."""
    _, own, _ = run(capsys, "cert", "--base-dir", str(accounts["alice"]))
    code, _, err = run(capsys, "friend", "add", own, "--base-dir", str(accounts["alice"]))
    assert code == 2 and "own certificate" in err
    _, bob, _ = run(capsys, "cert", "--base-dir", str(accounts["bob"]))
    mangled = bob.strip()[:-8] + ("A" if bob.strip()[-8] != "A" else "B") + bob.strip()[-7:]
    code, _, err = run(capsys, "friend", "add", mangled, "--base-dir", str(accounts["alice"]))
    assert code == 2 and "not a RetroShare certificate or invite" in err
    with FriendList(accounts["alice"] / FRIENDS_FILE) as friends:
        assert friends.profiles() == []


@pytest.mark.slow
def test_friend_remove_by_pgp_or_ssl_id(accounts: dict[str, pathlib.Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``friend remove`` takes an SSL id (one location) or a PGP id (the whole profile)."""
    bob = Account.load(accounts["bob"], PASSWORD)
    _, text, _ = run(capsys, "cert", "--base-dir", str(accounts["bob"]))
    alice_dir = str(accounts["alice"])
    assert run(capsys, "friend", "add", text, "--base-dir", alice_dir)[0] == 0
    assert run(capsys, "friend", "remove", str(bob.ssl_id), "--base-dir", alice_dir)[0] == 0
    with FriendList(accounts["alice"] / FRIENDS_FILE) as friends:
        assert friends.locations() == [] and friends.is_accepted_profile(bob.pgp_id)
    code, _, err = run(capsys, "friend", "remove", str(bob.ssl_id), "--base-dir", alice_dir)
    assert code == 2 and str(bob.ssl_id) in err
    assert run(capsys, "friend", "remove", str(bob.pgp_id), "--base-dir", alice_dir)[0] == 0
    with FriendList(accounts["alice"] / FRIENDS_FILE) as friends:
        assert friends.profiles() == []
    for bad in ("xyz", "zz" * 8):
        code, _, err = run(capsys, "friend", "remove", bad, "--base-dir", alice_dir)
        assert code == 2 and err.startswith("rsnode: error:")


def test_demo_and_identity_commands_registered() -> None:
    """``demo`` is still there beside the identity commands; --base-dir defaults per platform."""
    parser = build_parser()
    assert parser.parse_args(["demo"]).command == "demo"
    args = parser.parse_args(["friend", "list"])
    assert args.base_dir == cli_common.default_base_dir()
    assert args.base_dir.name == "rsproto"


@pytest.mark.slow
def test_cli_as_subprocess(accounts: dict[str, pathlib.Path]) -> None:
    """``python3 -m services.cli`` works end to end: cert, then friend add on the other side."""
    env = dict(os.environ, **{PASSWORD_ENV: PASSWORD})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cert = subprocess.run([sys.executable, "-m", "services.cli", "cert", "--base-dir",
                           str(accounts["bob"])], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True).stdout
    added = subprocess.run([sys.executable, "-m", "services.cli", "friend", "add", cert.strip(),
                            "--base-dir", str(accounts["alice"])], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    assert "added friend bob" in added.stdout
    wrong = subprocess.run([sys.executable, "-m", "services.cli", "run", "--base-dir",
                            str(accounts["bob"])], env=dict(env, RSNODE_PASSWORD="nope"),
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and wrong.stderr.strip() == "rsnode: error: wrong password"


@pytest.mark.slow
def test_cert_carries_the_address_rsnode_run_listened_on(
        accounts: dict[str, pathlib.Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Without ``--port``, ``cert`` names the address the node last listened on (net.json)."""
    import json

    from services.node.node import NET_FILE
    (accounts["alice"] / NET_FILE).write_text(json.dumps({"host": "127.0.0.1", "port": 40123}))
    code, out, _ = run(capsys, "cert", "--base-dir", str(accounts["alice"]))
    assert code == 0
    cert = RsCertificate.decode(out)
    assert str(cert.local_addr) == "127.0.0.1:40123"
