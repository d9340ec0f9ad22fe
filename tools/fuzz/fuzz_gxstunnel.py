# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the GXS tunnel's input paths: what a turtle tunnel hands the tunnel core.

The first byte picks how the rest reaches a `GxsTunnelCore` whose tunnel with a peer is
already keyed:

- 0: as turtle data on that tunnel, raw (a clear DH item after 8 zero bytes, or an
  encrypted frame that must fail its HMAC);
- 1: encrypted with the tunnel's key first, so the bytes reach the tunnel item decoder and
  the data/ack/status handling behind the HMAC;
- 2: to `crypto.decrypt` alone, with a fixed key.

Oracles: only the tunnel's own errors are caught inside the core (it counts and drops); a
tunnel still answers after any input; its tables stay within their bounds.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.items.turtle import TurtleDirection, TurtleGenericDataItem
    from pqi.wire.fields import GxsId, Sha1Hash, SslId
    from services.gxs.security import generate_key_pair
    from services.gxstunnel import core as core_module
    from services.gxstunnel import crypto
    from services.gxstunnel.core import GxsTunnelCore, TunnelStatus

__all__ = ["one_input"]

_OWN = generate_key_pair(1_700_000_000, 0x10)
_PEER = GxsId(b"\x07" * 16)
_VP = SslId(b"\x05" * 16)
_HASH = Sha1Hash(b"\x00\x00\x00\x01" + bytes(_OWN.key_id))
_KEY = b"k" * 16
_DH = crypto.DhKey(123456789)


def _core() -> GxsTunnelCore:
    core = GxsTunnelCore(lambda g: _OWN.private if g == _OWN.key_id else None,
                         lambda g: None, own_ids=lambda: (_OWN.key_id,),
                         dh_factory=lambda: _DH)
    core.register_client(0xA0001)
    tid = crypto.tunnel_id(_OWN.key_id, _PEER)
    core.sessions[_VP] = core_module._DhSession(_HASH, TurtleDirection.CLIENT, _OWN.key_id,
                                                dh=_DH, tunnel_id=tid, last_restart=0.5)
    core.tunnels[tid] = core_module._Tunnel(_OWN.key_id, _PEER, None, False,
                                            TunnelStatus.CAN_TALK, 0.0, 0.0, key=_KEY,
                                            virtual_peer=_VP)
    core.drain(0.0)
    return core


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    if mode == 2:
        try:
            crypto.decrypt(_KEY, rest)
        except crypto.TunnelAuthError:
            pass
        return
    core = _core()
    payload = crypto.encrypt(_KEY, rest, iv=b"\x01" * 8) if mode == 1 else rest
    core.turtle_data_received(TurtleGenericDataItem(0, payload), _HASH, _VP, 1.0)
    core.handle_timer(2.0)
    core.drain(2.0)
    for tunnel in core.tunnels.values():
        if len(tunnel.prints) > core_module.MAX_DATA_PRINTS or \
                len(tunnel.pending) > core_module.MAX_PENDING_DATA:
            raise AssertionError("a tunnel table outgrew its bound")
    if len(core.tunnels) > core_module.MAX_TUNNELS:
        raise AssertionError("too many tunnels")


if __name__ == "__main__":
    fuzz(one_input)
