"""Conformance with real RetroShare 0.6.7 nodes: every captured item decodes and re-encodes.

The captures (``tests/vectors/retroshare``: ``captures/``) are what real nodes sent each other;
they are ground truth.  Each ``*.items.jsonl`` is read once per module.  Besides the blanket
round trip, the tests pin what specific captured items must decode to (texts, names, hashes).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

import pytest

import pqi
from pqi.items.chat import ChatFlags, ChatMsgItem, ChatStatusItem
from pqi.items.discovery import DiscPgpKeyItem
from pqi.items.msg import MsgItem
from pqi.items.serviceinfo import ServiceInfoListItem, full_service_id
from pqi.items.turtle import TurtleFtSearchResultItem, TurtleStringSearchRequestItem

Captured = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def captured(captures: pathlib.Path) -> Captured:
    """Every capture file's lines, parsed once: node name -> list of JSON objects."""
    out: Captured = {}
    for path in sorted(captures.glob("*.items.jsonl")):
        with path.open() as f:
            out[path.name.split(".")[0]] = [json.loads(line) for line in f]
    assert set(out) == {"alice", "bob", "carol"}
    return out


def _item(captured: Captured, node: str, line: int) -> tuple[bytes, Any]:
    """The raw bytes of ``node``'s capture line ``line`` (1-based) and their decoding."""
    raw = bytes.fromhex(captured[node][line - 1]["hex"])
    return raw, pqi.decode(raw)


def test_every_captured_item_decodes_to_its_class_and_reencodes_identically(
        captured: Captured) -> None:
    """All 2530 captured items: known class, byte-identical re-encoding, right (service, sub)."""
    kinds: set[tuple[int, int]] = set()
    count = 0
    for node, lines in captured.items():
        for n, o in enumerate(lines, 1):
            raw = bytes.fromhex(o["hex"])
            item = pqi.decode(raw)
            where = f"{node}:{n}"
            assert not isinstance(item, pqi.UnknownItem), where
            assert (item.SERVICE, item.SUBTYPE) == (int(o["service"], 16),
                                                   int(o["subtype"], 16)), where
            assert pqi.encode(item) == raw, where
            kinds.add((item.SERVICE, item.SUBTYPE))
            count += 1
    assert count == 2530
    assert len(kinds) == 38


def test_out_items_carry_the_priority_the_real_node_gave_them(captured: Captured) -> None:
    """Each class's PRIORITY equals the ``prio`` the capturing node recorded for its out items."""
    seen: dict[type, set[int]] = {}
    for lines in captured.values():
        for o in lines:
            if o["dir"] == "out":
                item = pqi.decode(bytes.fromhex(o["hex"]))
                seen.setdefault(type(item), set()).add(o["prio"])
    assert len(seen) == 38
    for cls, prios in seen.items():
        assert prios == {cls.PRIORITY}, cls.__name__


def test_20000_character_chat_arrives_in_two_parts_that_concatenate(captured: Captured) -> None:
    """alice:237 (private|partial) + alice:238 (private) give the whole 20000-char text."""
    _, first = _item(captured, "alice", 237)
    _, last = _item(captured, "alice", 238)
    assert isinstance(first, ChatMsgItem) and isinstance(last, ChatMsgItem)
    assert first.flags == ChatFlags.PRIVATE | ChatFlags.PARTIAL_MESSAGE == 0x0101
    assert last.flags == ChatFlags.PRIVATE == 0x0001
    text = first.message + last.message
    expected = "".join(f"{i:05d}:The quick brown fox jumps over the lazy dog.\n"
                       for i in range(400))[:20000]
    assert text == expected


def test_unicode_chat_decodes_to_its_utf8_text(captured: Captured) -> None:
    """bob:225 carries non-ASCII text in several scripts, decoded from UTF-8."""
    raw, item = _item(captured, "bob", 225)
    assert isinstance(item, ChatMsgItem)
    assert item.message == ("Grüße aus Köln, café crème, naïve façade; emoji 😀🚀👍🏽; "
                            "Hebrew שלום עולם; Arabic مرحبا بالعالم; CJK 你好世界")
    assert item.message.encode() in raw


def test_custom_state_string(captured: Captured) -> None:
    """alice:248 sends her custom state string with the CUSTOM_STATE flag."""
    _, item = _item(captured, "alice", 248)
    assert item == ChatStatusItem(flags=ChatFlags.CUSTOM_STATE,
                                  status="capturing wire vectors ☕")


def test_mail_with_attachment(captured: Captured, captures: pathlib.Path) -> None:
    """bob:1204 is bob's reply to alice holding hello-from-bob.txt (115 bytes, sha1 4c229910…)."""
    _, item = _item(captured, "bob", 1204)
    assert isinstance(item, MsgItem)
    assert item.subject.startswith("Re: Test mail from alice ✉")
    assert {p.to_hex() for p in item.to_peers} == {"86192d6a6926c8af956f3601f1a77d19"}
    (f,) = item.attachment.items
    assert (f.name, f.size) == ("hello-from-bob.txt", 115)
    assert f.hash.to_hex().startswith("4c229910")
    content = (captures / "shared-files" / "hello-from-bob.txt").read_bytes()
    assert f.hash == hashlib.sha1(content).digest()


def test_turtle_search_and_result(captured: Captured) -> None:
    """alice:589 searches ``needle``; bob:590 answers with needle-5MiB.bin, same request id."""
    _, search = _item(captured, "alice", 589)
    _, result = _item(captured, "bob", 590)
    assert isinstance(search, TurtleStringSearchRequestItem)
    assert isinstance(result, TurtleFtSearchResultItem)
    assert search.match_string == "needle"
    assert search.request_id == result.request_id == 0x3E18EF82
    (hit,) = result.results
    assert (hit.name, hit.size) == ("needle-5MiB.bin", 5242880)
    assert hit.hash.to_hex() == "a70bb987f5357e1bfd896b729715b2bdcac9968f"


def test_discovery_forwards_carols_key(captured: Captured) -> None:
    """bob:795 (PGP_CERT_BINARY) holds carol's key: its v4 fingerprint ends in her PGP id."""
    _, item = _item(captured, "bob", 795)
    assert isinstance(item, DiscPgpKeyItem)
    assert item.pgp_id.to_hex() == "CDDB2139D3476079"
    key = item.key_data
    assert key[0] == 0xC6  # new-format public-key packet, two-octet length
    length = (key[1] - 192 << 8) + key[2] + 192
    body = key[3:3 + length]
    fpr = hashlib.sha1(b"\x99" + length.to_bytes(2, "big") + body).hexdigest().upper()
    assert fpr == "732643137AD262BE398C4F1CCDDB2139D3476079"


def test_service_list_names_ids_and_versions(captured: Captured) -> None:
    """alice:1, the 982-byte ServiceInfo list: 21 services, names and versions as announced."""
    raw, item = _item(captured, "alice", 1)
    assert len(raw) == 982
    assert isinstance(item, ServiceInfoListItem)
    names = {k: v.name for k, v in item.services.items()}
    assert names == {full_service_id(s): n for s, n in [
        (0x0011, "disc"), (0x0012, "chat"), (0x0013, "msg"), (0x0014, "turtle"),
        (0x0016, "heartbeat"), (0x0017, "ft"), (0x0018, "Global Router"),
        (0x0019, "file_database"), (0x0020, "serviceinfo"), (0x0021, "bandwidth_ctrl"),
        (0x0028, "GxsTunnels"), (0x0101, "banlist"), (0x0102, "status"), (0x0211, "gxsid"),
        (0x0215, "gxsforums"), (0x0216, "gxsposted"), (0x0217, "gxschannels"),
        (0x0218, "gxscircle"), (0x0219, "gxsreputation"), (0x0230, "GXS Mails"),
        (0x1011, "rtt")]}
    for key, info in item.services.items():
        assert info.service_type == key
        expected = (0, 1, 0, 1) if info.name == "GXS Mails" else (1, 0, 1, 0)
        assert (info.version_major, info.version_minor, info.min_version_major,
                info.min_version_minor) == expected, info.name
