"""The event stream against the recorded RetroShare streams: each recorded cause (a friend
added, connecting, disconnecting, typing; a chat; an identity created; a lobby list change;
a mail; a shared folder hashed; a friend's list synced; a download completing; a search) is
caused on live nodes, and the frames are
checked: RetroShare's framing (``data: <compact JSON>\\n\\n``, the registration answer
first), the ``mType`` numbers and codes, and each event's shape against the recorded event
of the same kind.  Filtered streams get only their type; rsproto's extras (download
progress, keep-alives) are there too.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from twisted.internet import defer

from pqi.interfaces import DisconnectReason
from services.jsonapi.events import (
    EXT_DOWNLOAD_PROGRESS,
    EXT_KEEPALIVE,
    MAX_QUEUED_FRAMES,
    EventStreams,
    frame,
)
from tests.conftest import JSONAPI
from tests.jsonapi_helpers import parse_response, raw_http, shape_diff, start_pair
from tests.service_fakes import make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.integration]


def kind_of(event: dict[str, Any]) -> tuple[int, Any]:
    """(mType, the member telling events of one type apart)."""
    t = event["mType"]
    if t == 15 and "mEventCode" in event:  # chat service events and lobby events share codes
        return t, ("service" if "mCid" in event else "lobby", event["mEventCode"])
    for member in ("mEventCode", "mFileTransferEventCode", "mMailStatusEventCode",
                   "mGossipDiscoveryEventType", "mIdentityEventCode"):
        if member in event:
            return t, event[member]
    if "mChatMessage" in event:
        return t, "message"
    return t, None


def recorded_events() -> dict[tuple[int, Any], dict[str, Any]]:
    out: dict[tuple[int, Any], dict[str, Any]] = {}
    for line in (JSONAPI / "events.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["kind"] == "event":
            event = entry["json"]["event"]
            out.setdefault(kind_of(event), event)
    return out


RECORDED = recorded_events()
#: The causes this test produces, and the (mType, code) each must give.
EXPECTED = {
    (4, 5), (4, 12),             # acceptInvite: NODE_ADDED, PROFILE_ADDED
    (4, 1), (4, 2), (4, 7),      # friend connected, disconnected, status changed
    (4, 9),                      # typing (state string)
    (2, 1),                      # discovery info received
    (7, 1),                      # mail arrived
    (15, ("service", 1)), (15, ("service", 3)), (15, "message"),  # private chat arrived
    (13, 10), (13, 1), (13, 5), (13, 12),  # shared folder added and hashed
    (13, 11),                    # friend's file list updated
    (12, 3),                     # identity created
    (15, ("lobby", 3)),          # lobby list changed (a lobby created)
    (14, 1),                     # download complete
    (14, 3),                     # search results
}


async def _cause_everything(reactor: Any, tmp_path: Any) -> dict[str, Any]:
    pair = await start_pair(reactor, tmp_path, keepalive=0.5)
    alice, bob = pair.alice, pair.bob
    got: dict[str, list[dict[str, Any]]] = {"all": [], "f14": [], "f4": [], "alice": []}
    streams = {"all": pair.client("bob").events(0, skip_keepalive=False),
               "f14": pair.client("bob").events(14),
               "f4": pair.client("bob").events(4, skip_keepalive=False),
               "alice": pair.client("alice").events(0)}
    raw_stream = defer.ensureDeferred(raw_http(reactor, pair.port("bob"), (
        "POST /rsEvents/registerEventsHandler HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {pair.creds['bob'].basic_header()}\r\n"
        "Content-Length: 15\r\n\r\n{\"eventType\":0}").encode(), timeout=60))

    async def pump(name: str) -> None:
        try:
            async for event in streams[name]:
                got[name].append(event)
        except Exception:  # noqa: BLE001 - the stream ends when the nodes stop
            return

    pumps = [defer.ensureDeferred(pump(n)) for n in streams]
    for s in streams.values():
        await s.ready

    def seen(name: str = "all") -> set[tuple[int, Any]]:
        return {kind_of(e) for e in got[name]}

    try:
        bob_api, alice_api = pair.client("bob"), pair.client("alice")
        carol = make_node(reactor, tmp_path, "carol")
        assert (await bob_api.call("/rsPeers/acceptInvite", {
            "invite": carol.account.certificate_text()}))["retval"] is True
        carol.friends_list.close()
        cid = {"broadcast_status_peer_id": "0" * 32, "type": 1,
               "peer_id": bob.ssl_id.to_hex(), "distant_chat_id": "0" * 32, "lobby_id": 0}
        assert (await alice_api.call("/rsChats/sendChat", {"id": cid, "msg": "hi bob"}))[
            "retval"] is True
        await alice_api.call("/rsChats/sendStatusString", {"id": cid,
                                                           "status_string": "is typing..."})
        made = await bob_api.call("/rsIdentity/createIdentity",
                                  {"name": "Bob GXS", "pseudonimous": True})
        assert made["retval"] is True
        assert (await bob_api.call("/rsChats/createChatLobby", {
            "lobby_name": "events", "lobby_identity": made["id"], "lobby_topic": "",
            "invited_friends": [], "lobby_privacy_type": 4}))["retval"]["xint64"] > 0
        assert (await alice_api.call("/rsMail/MessageSend", {"info": {
            "title": "events test", "msg": "<p>mail</p>", "destinations": [
                {"_type": 1, "_mode": 1, "_addr_string": bob.ssl_id.to_hex()}]}}))["retval"]
        new_dir = os.path.join(tmp_path, "share", "bob-new")
        os.makedirs(new_dir)
        with open(os.path.join(new_dir, "fresh.txt"), "wb") as f:
            f.write(b"fresh file for hashing\n" * 100)
        old = os.stat(os.path.join(new_dir, "fresh.txt")).st_mtime - 3600
        os.utime(os.path.join(new_dir, "fresh.txt"), (old, old))
        assert (await bob_api.call("/rsFiles/addSharedDirectory", {"dir": {
            "filename": new_dir, "virtualname": "bob-new", "shareflags": 3200,
            "parent_groups": []}}))["retval"] is True
        hello = next(f for _, f in bob.sharing.lists.trees[alice.ssl_id].walk()
                     if f.name == "hello-from-alice.txt")
        assert (await bob_api.call("/rsFiles/FileRequest", {
            "fileName": hello.name, "hash": hello.hash.to_hex(), "size": hello.size,
            "destPath": "", "flags": 0, "srcIds": [alice.ssl_id.to_hex()]}))["retval"]
        search = await bob_api.call("/rsFiles/turtleSearch", {"matchString": "hello"})
        first = {(4, 5), (4, 12), (15, ("service", 1)), (4, 9), (7, 1), (13, 5), (14, 1),
                 (14, 3), (12, 3), (15, ("lobby", 3))}
        await wait_for(reactor, lambda: first <= seen(), 60)
        alice.sharing.lists.refresh(bob.ssl_id)
        await wait_for(reactor, lambda: (13, 11) in seen("alice"), 30)
        alice.reset_link(bob.ssl_id, DisconnectReason.CLOSED)
        await wait_for(reactor, lambda: (4, 2) in seen(), 30)
        await wait_for(reactor, lambda: [kind_of(e) for e in got["all"]].count((4, 1)) >= 1
                       and (2, 1) in seen(), 60)
        await wait_for(reactor, lambda: any(e["mType"] == EXT_KEEPALIVE for e in got["all"]),
                       10)
    finally:
        for s in streams.values():
            s.close()
        await pair.stop()
        await defer.DeferredList(pumps)
    raw = await raw_stream
    return {"got": got, "search": search, "raw": raw}


@pytest.fixture(scope="module")
def caused(tmp_path_factory: Any) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("events")
    return on_fresh_reactor(lambda reactor: _cause_everything(reactor, tmp), 200)


def test_each_recorded_cause_gives_retroshares_event(caused) -> None:
    """Every cause produced the (mType, code) RetroShare sends for it."""
    seen = {kind_of(e) for e in caused["got"]["all"] + caused["got"]["alice"]}
    assert EXPECTED <= seen


def test_events_have_the_recorded_shapes(caused) -> None:
    """Each event has the members of the recorded event of its kind, in the same order,
    with the same types and 64-bit encodings."""
    wrong = []
    checked = set()
    for event in caused["got"]["all"] + caused["got"]["alice"]:
        kind = kind_of(event)
        if kind in RECORDED:
            diff = shape_diff(RECORDED[kind], event)
            checked.add(kind)
            if diff:
                wrong.append((kind, diff))
    assert wrong == []
    assert EXPECTED <= checked | {k for k in EXPECTED if k not in RECORDED}
    assert len(checked) >= 15


def test_framing_is_retroshares(caused) -> None:
    """On the wire: ``data: <compact JSON>\\n\\n`` frames, the registration answer first
    (byte for byte as recorded), event frames ``{"event":{"mType":…,"mTime":…}}``."""
    status, headers, body = parse_response(caused["raw"])
    assert status == 200
    assert dict(headers)["Content-Type"] == "text/event-stream"
    frames = body.split(b"\n\n")
    recorded_first = (JSONAPI / "events.sse.txt").read_bytes().split(b"\r\n\r\n", 1)[1]
    assert frames[0] + b"\n\n" == recorded_first.split(b"\n\n")[0] + b"\n\n"
    assert len(frames) > 10
    for f in frames[1:-1]:
        assert re.fullmatch(rb'data: \{"event":\{"mType":\d+,"mTime":\{"xint64":\d+,'
                            rb'"xstr64":"\d+"\}.*\}\}', f), f
        assert json.dumps(json.loads(f[6:]), separators=(",", ":"),
                          ensure_ascii=False).encode() == f[6:]


def test_filtered_streams_get_only_their_type(caused) -> None:
    """A stream opened with eventType 14 gets only FILE_TRANSFER events (the download and
    the search), one with 4 only FRIEND_LIST events (its keep-alives are SSE comments,
    which event-stream readers skip)."""
    f14 = caused["got"]["f14"]
    assert {e["mType"] for e in f14} == {14}
    assert {kind_of(e) for e in f14} >= {(14, 1), (14, 3)}
    f4 = caused["got"]["f4"]
    assert {e["mType"] for e in f4} == {4}
    assert {kind_of(e) for e in f4} >= {(4, 1), (4, 2), (4, 5), (4, 9)}


def test_search_results_carry_the_request_id(caused) -> None:
    """The NEW_DISTANT_SEARCH_RESULTS event names the id turtleSearch returned and lists
    the matching file with RetroShare's result members."""
    results = [e for e in caused["got"]["all"] if kind_of(e) == (14, 3)]
    assert results[0]["mRequestId"] == caused["search"]["retval"]
    assert [r["fName"] for r in results[0]["mResults"]] == ["hello-from-alice.txt"]
    assert list(results[0]["mResults"][0]) == ["fSize", "fHash", "fName", "fWeight",
                                               "fSnippet"]


def test_extras_progress_and_keepalives(caused) -> None:
    """rsproto's extra event types: download progress (ending at the file's size with state
    complete) and keep-alives on idle streams."""
    progress = [e for e in caused["got"]["all"] if e["mType"] == EXT_DOWNLOAD_PROGRESS]
    assert progress[-1]["mState"] == "complete"
    assert progress[-1]["mTransferred"] == progress[-1]["mSize"] == {
        "xint64": 79, "xstr64": "79"}
    assert any(e["mType"] == EXT_KEEPALIVE for e in caused["got"]["all"])


def test_chat_event_carries_the_message(caused) -> None:
    """The CHAT_MESSAGE_RECEIVED event holds alice's text, the private ChatId and the
    RS_CHAT_PRIVATE flag, as recorded."""
    event = next(e for e in caused["got"]["all"] if kind_of(e) == (15, ("service", 1)))
    assert event["mMsg"]["msg"] == "hi bob"
    assert event["mCid"]["type"] == 1
    assert event["mMsg"]["chatflags"] == RECORDED[(15, ("service", 1))]["mMsg"]["chatflags"]
    assert event["mMsg"]["incoming"] is True


# --- bounds (deterministic, no sockets) -------------------------------------------------------

class _SlowRequest:
    """A request whose client stopped reading: the stream queues for it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.finished = False
        self.producer: Any = None
        self.headers: dict[bytes, bytes] = {}
        self.responseHeaders = self
        self.code = 200

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def finish(self) -> None:
        self.finished = True

    def registerProducer(self, producer: Any, streaming: bool) -> None:  # noqa: N802
        self.producer = producer

    def unregisterProducer(self) -> None:  # noqa: N802
        self.producer = None

    def notifyFinish(self) -> defer.Deferred[None]:  # noqa: N802
        return defer.Deferred()

    def setHeader(self, name: bytes, value: bytes) -> None:  # noqa: N802
        self.headers[name] = value

    def setResponseCode(self, code: int) -> None:  # noqa: N802
        self.code = code

    def removeHeader(self, name: bytes) -> None:  # noqa: N802
        self.headers.pop(name, None)


def test_slow_reader_is_dropped_at_the_queue_bound() -> None:
    """A stream whose client stops reading queues at most MAX_QUEUED_FRAMES frames, then
    is closed; other streams keep getting events."""
    from twisted.internet.task import Clock
    streams = EventStreams(Clock(), keepalive=0)
    slow, fast = _SlowRequest(), _SlowRequest()
    streams.open(slow, {})
    streams.open(fast, {})
    slow.producer.pauseProducing()
    event = {"mType": 7, "mTime": {"xint64": 1, "xstr64": "1"}}
    for _ in range(MAX_QUEUED_FRAMES):
        streams.publish(event)
    assert len(slow.producer.queue) == MAX_QUEUED_FRAMES and not slow.finished
    streams.publish(event)
    assert slow.finished and len(streams.streams) == 1
    assert len(fast.written) == MAX_QUEUED_FRAMES + 2  # registration + every event
    assert fast.written[-1] == frame({"event": event})


def test_stream_count_is_bounded() -> None:
    """Beyond MAX_EVENT_STREAMS a subscription is refused (503) instead of opened."""
    from twisted.internet.task import Clock

    from services.jsonapi.events import MAX_EVENT_STREAMS
    streams = EventStreams(Clock(), keepalive=0)
    requests = [_SlowRequest() for _ in range(MAX_EVENT_STREAMS + 1)]
    for r in requests:
        streams.open(r, {})
    assert len(streams.streams) == MAX_EVENT_STREAMS
    assert requests[-1].code == 503 and requests[0].code == 200


def test_keepalive_frames_on_the_clock() -> None:
    """Keep-alives come every KEEPALIVE period of the injected clock: an event frame on an
    unfiltered stream, an SSE comment on a filtered one."""
    from twisted.internet.task import Clock
    clock = Clock()
    streams = EventStreams(clock, keepalive=15)
    streams.start()
    everything, filtered = _SlowRequest(), _SlowRequest()
    streams.open(everything, {"eventType": 0})
    streams.open(filtered, {"eventType": 14})
    clock.advance(14)
    assert len(everything.written) == 1
    clock.advance(1)
    assert everything.written[-1] == frame({"event": {"mType": EXT_KEEPALIVE,
                                                      "mTime": {"xint64": 15,
                                                                "xstr64": "15"}}})
    assert filtered.written[-1] == b": keep-alive\n\n"
    streams.stop()
    assert everything.finished and filtered.finished
