"""Received text is shown in the CLI with control characters escaped (finding 4 of the audit:
``chat --follow`` and ``mail read`` printed a friend's escape sequences raw)."""

from __future__ import annotations

from typing import Any

from services.cli.chat import format_mail, format_mail_list, format_message
from services.cli.files import format_results, format_tree
from services.cli.node import format_status
from services.cli.terminal import safe
from services.cli.transfer import format_transfers

#: Retitle the terminal, clear it, then forge a line; with a bidi override for good measure.
EVIL = "hi\x1b]0;owned\x07\x1b[2J\rroot: ok\u202e\x9b31m"


def _raw_controls(text: str) -> list[str]:
    """Control characters a terminal would act on (newline and tab apart)."""
    return [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f
            or c == "\u202e"]


def test_safe_escapes_every_control_and_keeps_the_rest() -> None:
    """Controls become visible escapes; printable text (any script) stays as it is."""
    assert safe(EVIL) == "hi\\x1b]0;owned\\x07\\x1b[2J\\x0droot: ok\\u202e\\x9b31m"
    assert safe("a\nb\tc") == "a\\x0ab\\x09c"
    assert safe("a\nb\tc", multiline=True) == "a\nb\tc"
    assert safe("héllo 世界 🙂") == "héllo 世界 🙂"


def test_chat_line_is_escaped() -> None:
    """A chat message and its sender's name are shown escaped."""
    line = format_message({"peer": EVIL, "incoming": True, "public": False, "send_time": 0,
                           "text": EVIL})
    assert _raw_controls(line) == [] and "\\x1b]0;owned" in line


def test_mail_is_escaped() -> None:
    """Subject, tags, body (newlines kept) and attachment names of a mail are escaped."""
    mail: dict[str, Any] = {
        "id": 1, "from": "ab" * 16, "to": ["cd" * 16], "cc": [], "send_time": 0,
        "subject": EVIL, "text": f"line one\n{EVIL}", "read": False, "tags": [EVIL],
        "attachments": [{"name": EVIL, "size": 1, "hash": "00" * 20}]}
    shown = format_mail(mail) + format_mail_list([mail])
    assert _raw_controls(shown) == []
    assert "line one\n" in shown


def test_file_names_are_escaped() -> None:
    """Names in a friend's file list, search results and downloads are escaped."""
    tree = {"dirs": [{"name": EVIL, "dirs": [], "files": []}],
            "files": [{"name": EVIL, "size": 1, "hash": "00" * 20}]}
    results = [{"name": EVIL, "size": 1, "hash": "00" * 20,
                "sources": [{"ssl_id": "ab" * 16, "path": EVIL}]}]
    rows = [{"done": 1, "size": 2, "eta": None, "rate": 0.0, "state": "downloading",
             "name": EVIL, "error": EVIL}]
    shown = format_tree(tree) + format_results(results) + format_transfers(rows)
    assert _raw_controls(shown) == []


def test_status_names_are_escaped() -> None:
    """Friend names, location names and pending names in `rsnode status` are escaped."""
    report = {"name": "me", "location": "here", "ssl_id": "ab" * 16, "status": "online",
              "listening": "127.0.0.1:1",
              "friends": [{"name": EVIL, "location": EVIL, "ssl_id": "cd" * 16,
                           "online": False, "addresses": [], "attempts": [
                               {"ago": 1, "direction": "outgoing", "address": "x",
                                "outcome": "refused", "detail": EVIL}],
                           "next_attempt_in": None}],
              "pending": [{"name": EVIL, "pgp_id": "00" * 8, "learned_from": EVIL}]}
    assert _raw_controls(format_status(report)) == []


def test_identity_and_lobby_text_is_escaped(monkeypatch) -> None:
    """Identity names, lobby names, topics and inviters, and followed lobby messages (nick
    and text: a friend or a stranger in the lobby writes them) are escaped; so are the file
    names of the block list."""
    from services.cli import social
    from services.cli.block import format_listing
    ids = [{"own": False, "id": "ab" * 16, "name": EVIL, "pgp_id": None, "pgp_linked": False}]
    lobbies = {"joined": [{"id": 1, "name": EVIL, "topic": EVIL, "members": 1, "friends": []}],
               "visible": [{"id": 2, "name": EVIL, "topic": EVIL, "count": 3}],
               "invites": [{"id": 3, "name": EVIL, "from": EVIL}]}
    listing = {"ips": [], "whitelist": [], "friends": [], "ids": [],
               "files": [{"hash": "00" * 20, "name": EVIL}]}
    pages = iter([{"last": 0}, {"messages": [{"seq": 1, "incoming": True, "lobby": 1,
                                              "nick": EVIL, "text": EVIL}]}])
    monkeypatch.setattr(social, "_call", lambda base, command, args: next(pages))
    followed: list[str] = []
    social.follow(None, None, 1, followed.append)  # type: ignore[arg-type]
    shown = (social.format_identities(ids) + social.format_lobbies(lobbies)
             + format_listing(listing) + "".join(followed))
    assert followed and _raw_controls(shown) == []
