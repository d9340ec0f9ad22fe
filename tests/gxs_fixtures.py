"""Real groups, messages and keys from captures2, and a few pre-made RSA key pairs.

Making 2048-bit keys costs a noticeable fraction of a second, so tests share a small pool made
once per session (`key_pairs`).
"""

from __future__ import annotations

import functools

import pqi
from pqi.identity.certificate import RsCertificate
from pqi.identity.pgp import PublicKey
from pqi.items.gxs import KEY_DISTRIB_ADMIN, GrpMeta, MsgMeta, decode_grp_meta, decode_msg_meta
from pqi.items.nxs import NxsGrpItem, NxsMsgItem, NxsRsaKey
from pqi.wire.fields import GxsId, GxsMessageId
from services.gxs.security import KeyPair, generate_key_pair
from tests.captures2_items import NODES, items
from tests.conftest import CAPTURES2


@functools.cache
def captured_groups() -> dict[tuple[int, GxsId], tuple[NxsGrpItem, GrpMeta]]:
    """Every distinct group of captures2 by (service, group id)."""
    out = {}
    for _, _, data in items(frozenset(range(0x200, 0x300))):
        it = pqi.decode(data)
        if isinstance(it, NxsGrpItem):
            out[it.SERVICE, it.grp_id] = (it, decode_grp_meta(it.meta))
    return out


@functools.cache
def captured_messages() -> dict[tuple[int, GxsMessageId], tuple[NxsMsgItem, MsgMeta]]:
    """Every distinct message of captures2 by (service, message id)."""
    out = {}
    for _, _, data in items(frozenset(range(0x200, 0x300))):
        it = pqi.decode(data)
        if isinstance(it, NxsMsgItem):
            out[it.SERVICE, it.msg_id] = (it, decode_msg_meta(it.meta))
    return out


@functools.cache
def identity_keys() -> dict[GxsId, NxsRsaKey]:
    """The public key of each captured identity (its admin key)."""
    return {gid: next(k for k in meta.keys.public_keys() if k.key_id == gid)
            for (svc, gid), (_, meta) in captured_groups().items() if svc == 0x0211}


@functools.cache
def profile_keys() -> dict[str, PublicKey]:
    """alice's, bob's and carol's profile keys from their invites."""
    return {n: RsCertificate.decode((CAPTURES2 / f"{n}.invite.txt").read_text().strip())
            .public_key for n in NODES}


@functools.cache
def key_pairs(count: int = 6, now: int = 1_700_000_000) -> tuple[KeyPair, ...]:
    """A pool of admin key pairs (tests pick from it instead of generating keys)."""
    return tuple(generate_key_pair(now, KEY_DISTRIB_ADMIN) for _ in range(count))
