"""``rsnode chat @ID``, ``rsnode mail send --to @ID`` and ``rsnode distant``: which control
commands they send with which arguments, and what they print (the node is a recorder)."""

from __future__ import annotations

import pytest

from services.cli import chat as cli_chat
from services.cli import distant as cli_distant
from services.cli.rsnode import main

C_ID = "bc4cee70aa3d56696221859f5a6f6147"


@pytest.fixture
def node(monkeypatch, tmp_path):
    """A fake running node: records every control command, answers like the real one."""
    calls: list[tuple[str, dict]] = []
    answers = {
        "distant_chat_send": {"chat": "0d9322faa9ac3ac9482e9931a8172335",
                              "status": "tunnel_dn", "seq": 1},
        "distant_mail_send": {"ids": [7]},
        "mail_send": 3,
        "mail_outbox": [],
        "distant_permissions": {"chat": "no_one", "mail": "everyone"},
        "distant_chat_list": [],
        "distant_mail_outbox": [{"id": 7, "to": C_ID, "from": "00" * 16,
                                 "status": "receipt", "created": 0, "finished": 1}],
    }

    def ask(base, command, args=None):
        calls.append((command, args or {}))
        return answers[command]
    monkeypatch.setattr(cli_distant, "ask_node", ask)
    monkeypatch.setattr(cli_chat, "ask_node", ask)
    return calls, tmp_path


def test_chat_at_identity_is_distant(node, capsys) -> None:
    """``chat @ID TEXT`` opens or reuses the distant chat and says it is queued until the
    tunnel is up; an empty message is refused before the node is asked."""
    calls, base = node
    assert main(["--base-dir", str(base), "chat", "@" + C_ID, "hello ✓"]) == 0
    assert calls == [("distant_chat_send", {"to": C_ID, "text": "hello ✓", "identity": None})]
    assert "queued on distant chat 0d9322fa" in capsys.readouterr().out
    assert main(["--base-dir", str(base), "chat", "@" + C_ID, " "]) != 0
    assert len(calls) == 1


def test_mail_mixes_identities_and_friends(node, capsys) -> None:
    """``mail send`` sends @ recipients as distant mail and the others as direct mail."""
    calls, base = node
    assert main(["--base-dir", str(base), "mail", "send", "--to", "@" + C_ID, "--to", "bob",
                 "--subject", "S", "--body", "B"]) == 0
    assert calls[0] == ("distant_mail_send", {"to": ["@" + C_ID], "cc": [], "bcc": [],
                                              "subject": "S", "body": "B", "html": False,
                                              "identity": None})
    assert calls[1][0] == "mail_send" and calls[1][1]["to"] == ["bob"]
    assert "queued for 1 identity" in capsys.readouterr().out


def test_distant_permissions_and_outbox(node, capsys) -> None:
    """``distant permissions --chat no_one`` sets the flag; ``distant outbox`` lists mails."""
    calls, base = node
    assert main(["--base-dir", str(base), "distant", "permissions", "--chat", "no_one"]) == 0
    assert calls[-1] == ("distant_permissions", {"chat": "no_one", "mail": None})
    assert "distant chat: no_one" in capsys.readouterr().out
    assert main(["--base-dir", str(base), "distant", "outbox"]) == 0
    assert f"7  -> {C_ID}  receipt" in capsys.readouterr().out
