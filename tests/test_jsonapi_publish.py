"""``/rsGxsChannels``, ``/rsGxsForums``, ``/rsPosted``: the capture driver's calls, replayed.

captures2's ``timeline.jsonl`` records the JSON API calls the scenario driver made on the
real nodes (create a channel, a post with a file, a forum, threads and replies, a board, a
link post, subscriptions, a comment, a vote) and their answers.  Each call is made again,
with our identities in place of the real ones, on our services (two nodes per service, on
one clock): every answer has the members RetroShare's has, succeeds where it succeeded,
and what it made is readable through the listing calls.
"""

from __future__ import annotations

import json
import types
from typing import Any

from pqi.wire.fields import GxsId, GxsMessageId
from services.jsonapi import rs_publish
from services.jsonapi.api import ApiContext
from services.jsonapi.encoding import Params
from services.publish.service import BoardService, ChannelService, ForumService
from tests.conftest import CAPTURES2
from tests.publish_net import PublishNet

NAMES = {"alice": 0, "bob": 1}
PEOPLE = {"0ae352e5d8030e0f4f06c72924b8992b": "alice", "e45e0262e0a28b3c9968751ae8ec7e92": "bob"}


def _driver_calls() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    calls = []
    with open(CAPTURES2 / "timeline.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            path = d.get("args", {}).get("path", "") if d.get("action") == "api" else ""
            if path.startswith(("/rsGxsChannels/", "/rsGxsForums/", "/rsPosted/")):
                calls.append((d["args"]["node"], path, d["args"]["body"], d["result"]))
    return calls


class _World:
    """alice and bob, each with channels, forums and boards, friends of each other."""

    def __init__(self) -> None:
        self.nets = {cls: PublishNet(cls, 2) for cls in (ChannelService, ForumService,
                                                         BoardService)}
        for net in self.nets.values():
            net.connect(0, 1)
        self.ids = {name: self.nets[ChannelService].identities[i] for name, i in NAMES.items()}
        self.replace: dict[str, str] = {real: self.ids[who].to_hex()
                                        for real, who in PEOPLE.items()}

    def ctx(self, who: str) -> ApiContext:
        i = NAMES[who]
        node = types.SimpleNamespace(channels=self.nets[ChannelService].nodes[i],
                                     forums=self.nets[ForumService].nodes[i],
                                     boards=self.nets[BoardService].nodes[i])
        return ApiContext(node, self.nets[ChannelService].clock)

    def run(self) -> None:
        for net in self.nets.values():
            net.run(1)

    def swap(self, value: Any) -> Any:
        """The recorded body with real ids replaced by ours (ids made earlier included)."""
        if isinstance(value, dict):
            return {k: self.swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.swap(v) for v in value]
        return self.replace.get(value, value) if isinstance(value, str) else value


def _call(ctx: ApiContext, path: str, body: dict[str, Any]) -> dict[str, Any]:
    endpoint = rs_publish.ENDPOINTS.get(path)
    assert endpoint is not None, path
    return endpoint.handler(ctx, Params(body))  # type: ignore[no-any-return]


def test_the_capture_driver_calls_replayed() -> None:
    """Same answer members; what succeeded on the real nodes succeeds on ours, except the two
    calls that came too early there (the parent had not synced yet), which succeed here
    because our calls wait for sync; the made objects are listed afterwards."""
    world = _World()
    calls = _driver_calls()
    assert len(calls) == 16
    made: dict[str, str] = {}
    for who, path, body, recorded in calls:
        answer = _call(world.ctx(who), path, world.swap(body))
        assert set(answer) == set(recorded), path
        if recorded["retval"]:
            assert answer["retval"], (path, answer)
        for key in ("channelId", "forumId", "boardId", "postId", "postMsgId",
                    "commentMessageId", "voteId"):
            if key in answer and answer["retval"]:
                world.replace[recorded[key]] = answer[key]
                made[key + path] = answer[key]
        if path.endswith(("subscribeToChannel", "subscribeToForum", "subscribeToBoard")):
            world.run()
        world.run()
    bob, alice = world.ctx("bob"), world.ctx("alice")
    channel = made["channelId/rsGxsChannels/createChannelV2"]
    content = _call(bob, "/rsGxsChannels/getChannelContent", {"channelId": channel})
    (post,) = content["posts"]
    assert post["mMeta"]["mMsgName"] == "First post with a file"
    assert post["mFiles"] == [{"mName": "channel-attachment.txt",
                               "mHash": "7c4b3619a4ef959af61ccbfe399e46b4d3e8a83e",
                               "mSize": {"xint64": 89, "xstr64": "89"}}]
    # The comment, the reply and the vote were each called twice; the first calls failed on
    # the real nodes (not synced yet) and succeed here.
    assert [c["mComment"] for c in content["comments"]] == [
        "bob's comment on the channel post ✓"] * 2
    assert post["mCommentCount"] == 2
    board = made["boardId/rsPosted/createBoardV2"]
    (link,) = _call(alice, "/rsPosted/getBoardContent", {"boardId": board})["posts"]
    assert link["mLink"] == "https://retroshare.cc" and link["mUpVotes"] == 1
    forum = made["forumId/rsGxsForums/createForumV2"]
    msgs = _call(alice, "/rsGxsForums/getForumContent", {"forumId": forum})["msgs"]
    assert sorted(m["mMeta"]["mMsgName"] for m in msgs) == [
        "Re: Thread by bob"] * 3 + ["Thread by bob"]
    summaries = _call(bob, "/rsGxsChannels/getChannelsSummaries", {})["channels"]
    assert [(g["mGroupName"], g["mSubscribeFlags"]) for g in summaries] == [
        ("capture-channel", rs_publish.SUBSCRIBE_SUBSCRIBED)]
    (own,) = _call(alice, "/rsGxsChannels/getChannelsInfo", {"chanIds": [channel]})[
        "channelsInfo"]
    assert own["mMeta"]["mSubscribeFlags"] == (rs_publish.SUBSCRIBE_SUBSCRIBED |
                                               rs_publish.SUBSCRIBE_ADMIN |
                                               rs_publish.SUBSCRIBE_PUBLISH)
    assert own["mDescription"] == "alice's channel ✓"


def test_refusals_say_why() -> None:
    """A comment on nothing, a post in an unknown group, a reply to a missing parent and a
    node without the service answer retval false with an error message and null ids."""
    world = _World()
    bob = world.ctx("bob")
    unknown = GxsId(b"\x05" * 16).to_hex()
    missing = GxsMessageId(b"\x06" * 20).to_hex()
    answer = _call(bob, "/rsGxsChannels/createPostV2", {"channelId": unknown, "title": "x"})
    assert answer == {"postId": "0" * 40, "errorMessage": answer["errorMessage"],
                      "retval": False} and answer["errorMessage"]
    forum = _call(bob, "/rsGxsForums/createForumV2", {"name": "f"})["forumId"]
    answer = _call(bob, "/rsGxsForums/createPost", {"forumId": forum, "title": "t",
                                                     "parentId": missing})
    assert not answer["retval"] and "doesn't exists locally" in answer["errorMessage"]
    answer = _call(bob, "/rsGxsChannels/createCommentV2", {"channelId": unknown})
    assert not answer["retval"] and answer["commentMessageId"] == "0" * 40
    empty = ApiContext(types.SimpleNamespace(), world.nets[ChannelService].clock)
    assert _call(empty, "/rsPosted/getBoardsSummaries", {}) == {"groupInfo": [],
                                                                 "retval": False}
    assert not _call(empty, "/rsPosted/createBoardV2", {"board_name": "b"})["retval"]
