# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz distant mail's readers of peer bytes.

The first byte picks the target for the rest:

- 0: `decode_trans_message` (GXS trans message data): only `DecodeError` may escape, and
  what decodes re-encodes to the same bytes;
- 1: `open_sealed` with our key: only `SealError`;
- 2: the global router's receiving side, the rest cut into transaction chunk items
  (`GRouterService`): nothing escapes, its transaction table stays bounded;
- 3: a sealed mail payload as the GXS trans receiver reads it (the rest sealed to our key
  first): nothing escapes.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import pqi
    from pqi.interfaces import PeerIdentity
    from pqi.items.gxstrans import (
        TransMail,
        TransReceipt,
        decode_trans_message,
        encode_trans_mail,
        encode_trans_receipt,
    )
    from pqi.wire.errors import DecodeError
    from pqi.wire.fields import GxsId, PgpId, SslId
    from services.distant_mail import grouter
    from services.distant_mail.crypto import SealError, open_sealed, seal
    from services.gxs.security import generate_key_pair

__all__ = ["one_input"]

_OWN = generate_key_pair(1_700_000_000, 0x10)
_PEER = PeerIdentity(SslId(b"\x02" * 16), PgpId(b"\x02" * 8), "friend")


class _Clock:
    def seconds(self) -> float:
        return 100.0


class _Sender:
    def send(self, ssl_id: SslId, item: object) -> bool:
        pqi.encode(item)  # whatever we answer must encode
        return True

    def connected_peers(self) -> list:
        return [_PEER]


class _Identities:
    def own_ids(self) -> list[GxsId]:
        return [_OWN.key_id]

    def private_key(self, g: GxsId):
        return _OWN.private if g == _OWN.key_id else None

    def public_key(self, g: GxsId):
        return _OWN.public if g == _OWN.key_id else None

    def request(self, g: GxsId, peer: SslId) -> None:
        return None


class _Mail:
    identities = _Identities()
    filed: list = []

    def accept_mail(self, author, own, item, raw) -> bool:
        self.filed.append(item)
        return True


def _trans(rest: bytes) -> None:
    try:
        value = decode_trans_message(rest)
    except DecodeError:
        return
    again = encode_trans_mail(value) if isinstance(value, TransMail) else \
        encode_trans_receipt(value) if isinstance(value, TransReceipt) else None
    if again != rest:
        raise AssertionError("GXS trans data does not re-encode")


def _chunks(rest: bytes) -> None:
    router = grouter.GRouterService(_Sender(), _Clock(), _Mail())
    while len(rest) >= 8:
        size = max(8, int.from_bytes(rest[4:8], "big"))
        try:
            item = pqi.decode(rest[:size])
        except DecodeError:
            item = None
        rest = rest[size:]
        if item is not None:
            router.receive(_PEER, item)
    if len(router.transactions) > grouter.MAX_TRANSACTIONS:
        raise AssertionError("GRouter transactions outgrew their bound")


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    if mode == 0:
        _trans(rest)
    elif mode == 1:
        try:
            open_sealed(rest, _OWN.private)
        except SealError:
            pass
    elif mode == 2:
        _chunks(rest)
    else:
        payload = open_sealed(seal(rest, _OWN.public), _OWN.private)
        if payload != rest:
            raise AssertionError("sealing does not round-trip")


if __name__ == "__main__":
    fuzz(one_input)
