"""RetroShare's JSON encodings: 64-bit values both ways, lenient parameter reading (wrong
types keep the default, invalid ids read as null), the pretty layout, route keys."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from services.jsonapi.api import route_key
from services.jsonapi.encoding import (
    MAX_LIST_PARAM,
    NULL_HASH,
    NULL_PGP_ID,
    NULL_SSL_ID,
    Params,
    compact,
    pretty,
    x64,
)

ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(
    allow_nan=False) | st.text(), lambda s: st.lists(s) | st.dictionaries(st.text(), s),
    max_leaves=10)


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1))
def test_x64_round_trips_in_every_input_form(n: int) -> None:
    """A 64-bit value read back from the written object, from a plain number and from an
    object with only ``xstr64`` is the same value."""
    written = json.loads(json.dumps(x64(n)))
    assert written == {"xint64": n, "xstr64": str(n)}
    for form in (written, n, {"xstr64": str(n)}):
        assert Params({"v": form}).int64("v", default=-1) == n


@given(ANY_JSON)
def test_wrong_types_keep_defaults(value: object) -> None:
    """Whatever a member holds, each reader returns its type: the value when the JSON type
    is right, else the default (RetroShare's behaviour)."""
    p = Params({"v": value})
    i = p.int("v", 7)
    assert isinstance(i, int)
    if isinstance(value, bool) or not isinstance(value, int) or not (
            -(1 << 31) <= value < (1 << 32)):
        assert i == 7
    assert p.bool("v", True) is (value if isinstance(value, bool) else True)
    assert p.str("v", "d") == (value if isinstance(value, str) else "d")
    assert isinstance(p.int64("v"), int)
    assert len(p.ssl_id("v")) == 32 and len(p.pgp_id("v")) == 16 and len(p.hash("v")) == 40
    assert isinstance(p.list("v", lambda e: e), list)


def test_ids_are_normalised_or_null() -> None:
    """Upper-case SSL ids are accepted (lower-cased), PGP ids upper-cased; short, non-hex
    or non-string ids read as the null id."""
    p = Params({"a": "957122C8018C4A54286D60E4722E35B8", "b": "xyz", "c": 12345,
                "d": "535bf2593ce7a746", "e": "zz",
                "f": "1A5C7EFDFD0EDE11C06F15113B09F34BE6812EE0"})
    assert p.ssl_id("a") == "957122c8018c4a54286d60e4722e35b8"
    assert p.ssl_id("b") == p.ssl_id("c") == NULL_SSL_ID
    assert p.pgp_id("d") == "535BF2593CE7A746"
    assert p.pgp_id("a") == NULL_PGP_ID
    assert p.hash("e") == NULL_HASH
    assert p.hash("f") == "1a5c7efdfd0ede11c06f15113b09f34be6812ee0"


def test_non_object_bodies_are_no_parameters() -> None:
    """A list, string or number body gives empty parameters (RetroShare crashed on [])."""
    for body in ([], "x", 3, None):
        assert Params(body).int("anything", 5) == 5


def test_list_parameters_are_bounded() -> None:
    """At most MAX_LIST_PARAM list items are read."""
    p = Params({"ids": ["0" * 32] * (MAX_LIST_PARAM + 10)})
    assert len(p.ssl_ids("ids")) == MAX_LIST_PARAM


def test_pretty_layout_is_rapidjsons() -> None:
    """4-space indent, ``": "``, raw UTF-8, no trailing newline; frames compact."""
    body = pretty({"retval": True, "s": "Grüße ✓", "l": [], "o": {}, "f": 0.0})
    assert body == ('{\n    "retval": true,\n    "s": "Grüße ✓",\n    "l": [],\n'
                    '    "o": {},\n    "f": 0.0\n}').encode()
    assert compact({"a": [1, {"b": "é"}]}) == '{"a":[1,{"b":"é"}]}'.encode()


@given(st.binary(max_size=40))
def test_text_not_utf8_is_written_as_replacement_characters(data: bytes) -> None:
    """Any wire text (bytes that are not UTF-8 kept as lone surrogates) makes a valid UTF-8
    answer and frame, each escaped byte shown as one U+FFFD, the rest as it was."""
    text = data.decode("utf-8", "surrogateescape")
    shown = "".join("\ufffd" if "\udc80" <= ch <= "\udcff" else ch for ch in text)
    for body in (pretty({"s": text}), compact({"s": text})):
        assert json.loads(body.decode("utf-8")) == {"s": shown}


def test_a_json_clients_lone_surrogate_is_written_as_a_replacement_character() -> None:
    """Lone surrogates no decoder of ours makes (a client's ``\\ud800``) are U+FFFD too."""
    assert pretty(["\ud800x\udfff"]) == '[\n    "\ufffdx\ufffd"\n]'.encode()


def test_route_keys_ignore_case_and_empty_segments() -> None:
    """Paths match case-insensitively; double and trailing slashes are ignored."""
    assert route_key("/rsPeers/getFriendList") == route_key("//RSPEERS/getfriendlist/")
    assert route_key("/rsFoo/bar") != route_key("/rsPeers/getFriendList")


def test_lone_surrogates_a_client_sent_are_read_as_replacement_characters() -> None:
    """A JSON escape that pairs with nothing (``\\ud800``) reads as U+FFFD, in a string and in
    a list of strings, so the text can be sent and stored; a proper pair stays one character."""
    p = Params(json.loads('{"s": "a\\ud800b\\udfff", "l": ["\\udc00", "ok"], '
                          '"e": "\\ud83d\\ude00"}'))
    assert p.str("s") == "a\ufffdb\ufffd"
    assert p.strings("l") == ["\ufffd", "ok"]
    assert p.str("e") == "\U0001f600"


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=30))
def test_every_string_read_can_be_encoded(text: str) -> None:
    """Whatever string a client sends, surrogates included, the one read back holds no
    surrogate (it encodes as UTF-8) and is unchanged where the string already encoded."""
    read = Params({"v": text}).str("v")
    assert not any("\ud800" <= ch <= "\udfff" for ch in read)
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        assert read == text
