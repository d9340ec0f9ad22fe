"""Fuzzing the JSON API server (hypothesis): random request lines, headers, paths and JSON
bodies (any JSON value, wrong types everywhere) to every endpoint; the server answers each
one in HTTP, endpoints answer 200 as RetroShare does for any parameters, and a normal call
works afterwards.  The same server is the atheris target tools/fuzz/fuzz_jsonapi.py."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

with pytest.MonkeyPatch.context() as _mp:
    try:
        import atheris
    except ImportError:
        pass
    else:
        _mp.setattr(atheris, "instrument_imports", lambda *a, **k: contextlib.nullcontext())
    from tools.fuzz.fuzz_jsonapi import ENDPOINT_PATHS, one_input, server

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["sslId", "hash", "handle", "flags", "msgId", "id", "dir", "info",
                         "invite", "cert", "eventType", "box", "size", "srcIds", "to",
                         "xint64", "xstr64", "type", "peer_id", "_addr_string",
                         "destinations", "caller_data"]) | st.text(max_size=8),
        inner, max_size=6),
    max_leaves=20)
ENDPOINTS = [p for p in ENDPOINT_PATHS if not p.endswith("registerEventsHandler")]


def _case(path: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c.lower()
                   for c, f in zip(path, flips + [False] * len(path), strict=False))


@given(st.sampled_from(ENDPOINTS), JSON, st.lists(st.booleans(), max_size=40))
def test_every_endpoint_answers_any_json(path: str, body: object, flips: list[bool]) -> None:
    """Any JSON body (any case of the path) gets a 200 JSON answer, never an error."""
    s = server()
    out = s.post(_case(path, flips), json.dumps(body).encode())
    assert out.startswith(b"HTTP/1.1 200 "), (path, body, out[:200])
    head, _, payload = out.partition(b"\r\n\r\n")
    assert isinstance(json.loads(payload), dict)


@given(st.sampled_from(ENDPOINTS), st.binary(max_size=300))
def test_every_endpoint_answers_any_bytes(path: str, body: bytes) -> None:
    """Arbitrary body bytes (malformed JSON, invalid UTF-8) are "no parameters": 200."""
    out = server().post(path, body)
    assert out.startswith(b"HTTP/1.1 200 "), (path, body, out[:200])


@given(st.binary(max_size=600))
def test_raw_bytes_get_http_answers(data: bytes) -> None:
    """Raw bytes on a connection: whatever the server writes is an HTTP/1.1 answer, and it
    keeps serving (the harness checks a normal call afterwards)."""
    one_input(data)


@given(st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "HEAD", "BREW"]),
       st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60),
       st.lists(st.tuples(st.sampled_from(["Authorization", "Content-Length",
                                           "Transfer-Encoding", "Content-Type", "Origin",
                                           "Connection", "X-Any"]),
                          st.text(alphabet=st.characters(min_codepoint=32,
                                                         max_codepoint=126), max_size=40)),
                max_size=5),
       st.binary(max_size=100))
def test_request_lines_and_headers(method: str, path: str, headers: list, body: bytes) -> None:
    """Random methods, paths and headers (bad lengths, chunked, odd auth) on one
    connection: an HTTP answer or a closed connection, and the server keeps serving."""
    head = f"{method} /{path} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers)
    one_input(head.encode("latin-1") + b"\r\n" + body)


def test_json_array_body_that_crashed_retroshare() -> None:
    """The ``[]`` body that aborted retroshare-service gets the defaults' answer."""
    out = server().post("/rsPeers/getFriendList", b"[]")
    assert out.startswith(b"HTTP/1.1 200 ")
    assert json.loads(out.partition(b"\r\n\r\n")[2]) == {"sslIds": [], "retval": True}
