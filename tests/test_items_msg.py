"""Byte-exact tests of the mail item (service 0x0013).

Hex strings are items captured from real RetroShare 0.6.7 nodes (file:line of
``tests/vectors/retroshare``: ``captures/``) or built by hand from ``retroshare-wire-facts.md``.
"""

from __future__ import annotations

import pqi
from pqi.items.msg import MsgFlags, MsgItem
from pqi.wire.fields import GxsId, Sha1Hash, SslId
from pqi.wire.tlvvalues import FileItem, FileSet

ALICE_SSL = SslId.from_hex("86192d6a6926c8af956f3601f1a77d19")
#: bob:271, bob's reply to alice without attachment (empty FILESET TLV).
BOB_REPLY = (
    "02001301000000c4000000036b06df776b06df7700580000002252653a2054657374206d61696c2066726f"
    "6d20616c69636520e29c890057000000543c68746d6c3e3c626f64793e3c703e486920616c6963652c2067"
    "6f7420697421205265706c79207769746820612066696c652061747461636865642e3c2f703e3c2f626f64"
    "793e3c2f68746d6c3e10210000001686192d6a6926c8af956f3601f1a77d1910210000000610210000000"
    "6102500000006102500000006102500000006100100000006")


def test_captured_reply_without_attachment() -> None:
    """bob:271: flags, times, subject, HTML body, one 'to' peer, empty sets and file list."""
    item = MsgItem(
        flags=MsgFlags.OUTGOING | MsgFlags.PENDING, send_time=0x6B06DF77, recv_time=0x6B06DF77,
        subject="Re: Test mail from alice ✉",
        message="<html><body><p>Hi alice, got it! Reply with a file attached.</p></body></html>",
        to_peers=frozenset({ALICE_SSL}))
    raw = bytes.fromhex(BOB_REPLY)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item


def test_every_recipient_set_and_the_attachment_have_their_place() -> None:
    """to/cc/bcc peer sets, to/cc/bcc GXS sets, then the FILESET, in that order."""
    p = [SslId(bytes([i]) * 16) for i in (1, 2, 3)]
    g = [GxsId(bytes([i]) * 16) for i in (4, 5, 6)]
    f = FileItem(size=1, hash=Sha1Hash(b"\x07" * 20), name="f")
    item = MsgItem(flags=MsgFlags(0), send_time=0, recv_time=0, subject="", message="",
                   to_peers=frozenset({p[0]}), cc_peers=frozenset({p[1]}),
                   bcc_peers=frozenset({p[2]}), to_ids=frozenset({g[0]}),
                   cc_ids=frozenset({g[1]}), bcc_ids=frozenset({g[2]}),
                   attachment=FileSet(items=(f,)))
    sets = "".join(f"{t}00000016" + f"{i:02x}" * 16
                   for t, i in [("1021", 1), ("1021", 2), ("1021", 3),
                                ("1025", 4), ("1025", 5), ("1025", 6)])
    fileset = "10010000002f" "100000000029" "0000000000000001" + "07" * 20 + "00510000000766"
    raw = bytes.fromhex("02001301000000d3" + "00" * 12 + "005800000006" "005700000006"
                        + sets + fileset)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item
