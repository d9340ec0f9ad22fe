"""``rsnode files get`` / ``files transfers``: argument handling, file links, progress text."""

from __future__ import annotations

import pytest

from pqi.wire.fields import Sha1Hash
from services.cli.rsnode import build_parser
from services.cli.transfer import format_transfers, progress_bar
from services.transfer.commands import file_link, parse_file_link
from services.transfer.service import TransferError


def test_files_get_and_transfers_join_the_files_command() -> None:
    """Both subcommands parse beside the sharing ones under ``rsnode files``."""
    p = build_parser()
    args = p.parse_args(["files", "get", "ab" * 20, "--size", "5", "--name", "x"])
    assert args.file == "ab" * 20 and args.size == 5
    assert p.parse_args(["files", "transfers", "--once"]).once


def test_file_link_round_trip_and_refusal() -> None:
    """A RetroShare file link carries name, size and hash; anything else is refused."""
    h = Sha1Hash(b"\x12" * 20)
    link = file_link("a b&c.txt", 123, h)
    assert parse_file_link(link) == ("a b&c.txt", 123, h)
    with pytest.raises(TransferError):
        parse_file_link("http://file?name=x")
    with pytest.raises(TransferError):
        parse_file_link("retroshare://file?name=x")


def test_progress_lines() -> None:
    """A download shows a bar, percentage, rate, ETA, state and error."""
    assert progress_bar(50, 100, 10) == "[#####.....]"
    text = format_transfers([{"done": 25, "size": 100, "rate": 2500.0, "eta": 30.0,
                              "state": "downloading", "name": "f.bin", "error": ""},
                             {"done": 0, "size": 10, "rate": 0, "eta": None,
                              "state": "error", "name": "g", "error": "disk full"}])
    assert "25.0%" in text and "2.5 KB/s" in text and "eta   30 s" in text
    assert "(disk full)" in text and format_transfers([]) == "no downloads"
