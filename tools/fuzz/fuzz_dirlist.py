# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the file-list directory content decoder (service 0x0019 sync responses).

Only `DecodeError` may come out of `decode_dir`; a content that decodes must encode back to
the very same bytes (the decoder accepts only shortest size forms and exact sections), and a
remote tree must accept it.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.wire.errors import DecodeError
    from pqi.wire.fields import Sha1Hash, SslId
    from services.sharing.dirlist import decode_dir, encode_dir
    from services.sharing.remote import RemoteTree, TreeFullError

__all__ = ["one_input"]


def one_input(data: bytes) -> None:
    """Decode ``data`` as a directory; only DecodeError may escape; round trip exact."""
    try:
        content = decode_dir(data)
    except DecodeError:
        return
    again = encode_dir(content)
    if again != data:
        raise AssertionError(f"{data.hex()} re-encoded as {again.hex()}")
    tree = RemoteTree(SslId(bytes(16)), max_entries=10_000)
    try:
        tree.apply(Sha1Hash.null(), content, 1.0)
    except TreeFullError:
        return
    for h in tree.root.subdirs:
        tree.apply(h, content, 2.0)


if __name__ == "__main__":
    fuzz(one_input)
