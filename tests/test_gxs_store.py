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
