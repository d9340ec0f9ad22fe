"""tools/bench/codec.py stays runnable and its baseline stays honest: the hand-written `struct`
codec writes and reads the very bytes rsproto does, so the printed ratio compares like with
like."""

from __future__ import annotations

import pqi
from tools.bench.codec import StructCodec, main, sample_items


def test_struct_baseline_agrees_with_rsproto_on_every_sample() -> None:
    """Each sample item: the baseline's bytes equal rsproto's, and each decodes the other's."""
    codecs = {"chat message": (StructCodec.encode_chat, StructCodec.decode_chat),
              "file data 240 KiB": (StructCodec.encode_data, StructCodec.decode_data),
              "serviceinfo x12": (StructCodec.encode_info, StructCodec.decode_info)}
    items = sample_items()
    assert set(items) == set(codecs)
    for name, item in items.items():
        enc, dec = codecs[name]
        raw = pqi.encode(item)
        assert enc(item) == raw, name
        assert dec(raw) == item, name
        assert pqi.decode(enc(item)) == item, name


def test_bench_runs_briefly_and_prints_every_row(capsys) -> None:
    """A very short run exits 0 and prints a row per item and operation, then the ratio line."""
    assert main(["--seconds", "0.01"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if " encode " in line or " decode " in line]
    assert len(rows) == 6
    assert out[-1].startswith("worst ratio ")
