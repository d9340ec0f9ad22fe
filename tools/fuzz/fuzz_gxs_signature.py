# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the signature checker: a GXS group, then optionally a lobby item signed by it.

The input is an ``NXS_GRP`` item, then (optionally) a chat lobby message or event item.  The
group is checked with its own admin key (`check_group`); when it holds, its admin key checks
the lobby item (`check_lobby_item`), as a node checks an identity's lobby messages.  Only
decode and signature errors may escape; a group or lobby item that checks must re-encode to
the bytes it came from (nothing unsigned can slip through a check).
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import pqi
    from pqi.items.chat import ChatLobbyEventItem, ChatLobbyMsgItem
    from pqi.items.gxs import decode_grp_meta, encode_grp_meta
    from pqi.items.nxs import NxsGrpItem
    from pqi.wire.errors import DecodeError
    from services.chat.lobby_signing import check_lobby_item
    from services.gxs.policy import policy_for
    from services.gxs.security import SignatureError, check_group
    from services.gxsid.identity import identity_key

__all__ = ["one_input"]


def one_input(data: bytes) -> None:
    if len(data) < 8:
        return
    size = int.from_bytes(data[4:8], "big")
    try:
        grp = pqi.decode(data[:size])
        if not isinstance(grp, NxsGrpItem):
            return
        meta = decode_grp_meta(grp.meta)
        check_group(grp.grp, meta, grp.grp_id, policy_for(grp.SERVICE))
    except (DecodeError, SignatureError):
        return
    if encode_grp_meta(meta) != grp.meta:
        raise AssertionError("a checked group's metadata does not re-encode")
    key = identity_key(meta)
    rest = data[size:]
    if key is None or len(rest) < 8:
        return
    try:
        item = pqi.decode(rest)
        if not isinstance(item, ChatLobbyMsgItem | ChatLobbyEventItem):
            return
        check_lobby_item(item, key)
    except (DecodeError, SignatureError):
        return
    if pqi.encode(item) != rest:
        raise AssertionError("a checked lobby item does not re-encode")


if __name__ == "__main__":
    fuzz(one_input)
