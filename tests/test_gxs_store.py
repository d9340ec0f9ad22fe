"""The GXS store: persistence across a restart, bounds, update timestamps."""

from __future__ import annotations

import pathlib

import pytest

from pqi.items.gxs import encode_grp_meta, encode_msg_meta
from services.gxs.store import MAX_PEER_STATES, GxsStore, StoreFullError
from tests.gxs_fixtures import key_pairs
from tests.nxs_sim import SERVICE, make_group, make_message, ssl

T0 = 1_800_000_000


def _group(i: int = 3, name: str = "g"):  # type: ignore[no-untyped-def]
    return make_group(key_pairs()[i], key_pairs()[0], name, T0)


def test_a_reopened_store_has_everything(tmp_path: pathlib.Path) -> None:
    """Groups, messages, subscription, keys and timestamps survive closing the file."""
    path = tmp_path / "forums.sqlite"
    store = GxsStore(path, SERVICE)
    grp, meta = _group()
    store.put_group(grp, encode_grp_meta(meta), T0, subscribed=True)
    msg, mmeta = make_message(meta, key_pairs()[0], "hi", T0)
    store.put_message(msg, encode_msg_meta(mmeta), T0 + 1)
    store.put_private_key(key_pairs()[3].private)
    store.set_peer_grp_ts(ssl(1), 42)
    store.set_peer_msg_ts(ssl(1), meta.group_id, 43)
    state = (store.groups(), store.message_ids(meta.group_id), store.grp_server_ts(),
             store.msg_server_ts(meta.group_id))
    store.close()
    again = GxsStore(path, SERVICE)
    assert (again.groups(), again.message_ids(meta.group_id), again.grp_server_ts(),
            again.msg_server_ts(meta.group_id)) == state
    assert again.subscribed(meta.group_id)
    assert again.group(meta.group_id).grp == grp  # type: ignore[union-attr]
    assert again.message(mmeta.msg_id).msg == msg  # type: ignore[union-attr]
    assert again.private_keys(key_pairs()[3].key_id) == [key_pairs()[3].private]
    assert (again.peer_grp_ts(ssl(1)), again.peer_msg_ts(ssl(1), meta.group_id)) == (42, 43)


def test_group_bound_holds() -> None:
    """A store of max_groups groups refuses one more, and keeps what it had."""
    store = GxsStore(None, SERVICE, max_groups=2)
    for i in (3, 4):
        grp, meta = _group(i, f"g{i}")
        store.put_group(grp, encode_grp_meta(meta), T0)
    grp, meta = _group(5, "g5")
    with pytest.raises(StoreFullError):
        store.put_group(grp, encode_grp_meta(meta), T0)
    assert len(store.groups()) == 2


def test_messages_per_group_bound_holds() -> None:
    """A group of max_messages_per_group messages refuses one more."""
    store = GxsStore(None, SERVICE, max_messages_per_group=2)
    grp, meta = _group()
    store.put_group(grp, encode_grp_meta(meta), T0)
    for text in ("a", "b"):
        msg, mmeta = make_message(meta, key_pairs()[0], text, T0)
        store.put_message(msg, encode_msg_meta(mmeta), T0)
    msg, mmeta = make_message(meta, key_pairs()[0], "c", T0)
    with pytest.raises(StoreFullError):
        store.put_message(msg, encode_msg_meta(mmeta), T0)
    assert store.message_count(meta.group_id) == 2


def test_peer_state_bound_holds() -> None:
    """Timestamps of at most MAX_PEER_STATES friends are kept."""
    store = GxsStore(None, SERVICE)
    for i in range(MAX_PEER_STATES):
        store.set_peer_grp_ts(ssl(0).__class__(i.to_bytes(16, "big")), 1)
    with pytest.raises(StoreFullError):
        store.set_peer_grp_ts(ssl(0).__class__((MAX_PEER_STATES + 1).to_bytes(16, "big")), 1)


def test_server_times_only_move_forward() -> None:
    """Two changes in the same second still give two distinct, increasing times."""
    store = GxsStore(None, SERVICE)
    grp, meta = _group()
    store.put_group(grp, encode_grp_meta(meta), T0)
    first = store.grp_server_ts()
    store.set_subscribed(meta.group_id, True, T0)
    assert store.grp_server_ts() == first + 1
    store.set_subscribed(meta.group_id, False, T0 - 100)
    assert store.grp_server_ts() == first + 2


def test_a_message_needs_its_group() -> None:
    """Storing a message of an unknown group is refused."""
    store = GxsStore(None, SERVICE)
    _, meta = _group()
    msg, mmeta = make_message(meta, key_pairs()[0], "x", T0)
    with pytest.raises(KeyError):
        store.put_message(msg, encode_msg_meta(mmeta), T0)


def test_names_not_utf8_are_relayed_byte_identical(tmp_path: pathlib.Path) -> None:
    """A group and a message whose names are not UTF-8 cross a line of friends (every hop
    stores them) and reach the far end with the author's exact bytes: the decoded names are
    the same strings, and both signatures still hold there and after reopening a store file."""
    from services.gxs.nxs_core import SYNC_PERIOD
    from services.gxs.policy import policy_for
    from services.gxs.security import check_group, check_message
    from tests.nxs_sim import addr, build, connect_all
    junk = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    author = key_pairs()[0]
    grp, meta = make_group(key_pairs()[3], author, junk, T0)
    body, mmeta = make_message(meta, author, junk, T0)
    assert body == b"caf\xe9 \xff"
    net, nodes = build(3, {(0, 1), (1, 2)}, {author.key_id: author})  # type: ignore[dict-item]
    net.clock.advance(T0)
    net.feed(addr(0), nodes[0].core.publish_group, grp, meta)
    net.feed(addr(0), nodes[0].core.publish_message, body, mmeta)
    connect_all(net, nodes)
    net.run(3 * SYNC_PERIOD + 60)
    far = nodes[2].core.store
    group, message = far.group(meta.group_id), far.message(mmeta.msg_id)
    assert group is not None and message is not None
    assert (group.grp, group.meta_bytes) == (grp, encode_grp_meta(meta))
    assert (message.msg, message.meta_bytes) == (body, encode_msg_meta(mmeta))
    assert group.meta.name == junk and message.meta.name == junk
    lookup = {author.key_id: author.public}.get
    check_group(group.grp, group.meta, meta.group_id, policy_for(SERVICE), lookup)
    check_message(message.msg, message.meta, mmeta.msg_id, group.meta, policy_for(SERVICE),
                  lookup)
    store = GxsStore(tmp_path / "g.sqlite", SERVICE)
    store.put_group(group.grp, group.meta_bytes, T0)
    store.put_message(message.msg, message.meta_bytes, T0)
    store.close()
    again = GxsStore(tmp_path / "g.sqlite", SERVICE)
    kept = again.message(mmeta.msg_id)
    assert kept is not None and (kept.msg, kept.meta_bytes) == (body, encode_msg_meta(mmeta))
    check_message(kept.msg, kept.meta, mmeta.msg_id, again.group_meta(meta.group_id),
                  policy_for(SERVICE), lookup)
    again.close()
