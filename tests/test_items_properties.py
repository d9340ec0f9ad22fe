"""Properties every registered item class must have, whatever its service.

Round trip: any value built from the class's schema encodes and decodes back equal, and the
encoding is stable.  Robustness: any bytes after a valid header of any registered (service,
subtype), and any corruption of a valid encoding, either decode or raise a `DecodeError`.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pqi
from pqi.items import ids, nxs
from pqi.wire.item import ItemHeader
from tests.strategies_items import items

pytestmark = pytest.mark.slow

_ALL = sorted(pqi.registered().items())
#: NXS layouts are identical under every GXS service but for binary TLV types: the full
#: property runs on two services, a short one on the rest.
_FULL_NXS = {ids.SERVICE_GXS_TRANS, ids.SERVICE_FORUMS}
_MAIN = [cls for (service, _), cls in _ALL
         if service not in nxs.GXS_SERVICES or service in _FULL_NXS]
_OTHER_NXS = [cls for (service, _), cls in _ALL
              if service in nxs.GXS_SERVICES and service not in _FULL_NXS]


def _round_trip(item: pqi.PQItem) -> None:
    raw = pqi.encode(item)
    header = pqi.parse_header(raw)
    assert (header.service, header.subtype, header.size) == (item.SERVICE, item.SUBTYPE,
                                                             len(raw))
    again = pqi.decode(raw)
    assert type(again) is type(item)
    assert again == item
    assert pqi.encode(again) == raw


@pytest.mark.parametrize("cls", _MAIN, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_round_trip(cls: type[pqi.PQItem], data: st.DataObject) -> None:
    """encode then decode gives an equal item and the same bytes again."""
    _round_trip(data.draw(items(cls)))


@pytest.mark.parametrize("cls", _OTHER_NXS, ids=lambda cls: cls.__name__)
@settings(max_examples=10)
@given(data=st.data())
def test_round_trip_other_gxs_services(cls: type[pqi.PQItem], data: st.DataObject) -> None:
    """The NXS classes of the remaining GXS services round-trip too."""
    _round_trip(data.draw(items(cls)))


def _decode_or_decode_error(raw: bytes) -> None:
    try:
        item = pqi.decode(raw)
    except pqi.DecodeError:
        return
    assert isinstance(item, pqi.PQItem)
    assert pqi.encode(item) is not None


@settings(max_examples=600)
@given(key=st.sampled_from([k for k, _ in _ALL]), body=st.binary(max_size=160))
def test_arbitrary_body_decodes_or_raises_decode_error(key: tuple[int, int],
                                                       body: bytes) -> None:
    """Random bytes after a valid header of a registered kind: an item or a DecodeError."""
    header = ItemHeader(pqi.wire.item.PKT_VERSION_SERVICE, key[0], key[1], 8 + len(body))
    _decode_or_decode_error(header.pack() + body)


@settings(max_examples=600)
@given(data=st.data(), cls=st.sampled_from(_MAIN))
def test_corrupted_encoding_decodes_or_raises_decode_error(
        data: st.DataObject, cls: type[pqi.PQItem]) -> None:
    """A valid item with bytes flipped, cut or appended in its body: an item or a DecodeError."""
    raw = bytearray(pqi.encode(data.draw(items(cls))))
    action = data.draw(st.sampled_from(["flip", "cut", "append"]))
    if action == "flip" and len(raw) > 8:
        pos = data.draw(st.integers(8, len(raw) - 1))
        raw[pos] ^= data.draw(st.integers(1, 255))
    elif action == "cut" and len(raw) > 8:
        raw = raw[:data.draw(st.integers(8, len(raw) - 1))]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=8))
    raw[4:8] = len(raw).to_bytes(4, "big")
    _decode_or_decode_error(bytes(raw))
