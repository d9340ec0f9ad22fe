"""The JSON API's settings survive a restart: what clients set (authorised tokens, the
address to listen on, transfer settings, identity and reputation preferences) is written
atomically, 0600, to the account's jsonapi-settings.json and read back by the next
`JsonApiService`; a damaged file falls back to defaults; the tables are bounded."""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import types
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from services.cli.jsonapi import api_service
from services.jsonapi import ApiCredentials, JsonApiService, rs_config
from services.jsonapi.api import ApiContext, ApiSettings
from services.jsonapi.encoding import Params
from services.jsonapi.rs_identity import set_as_regular_contact
from services.jsonapi.rs_session import authorize_user
from services.jsonapi.settings import (
    MAX_AUTHORIZED_TOKENS,
    MAX_CONTACTS,
    SETTINGS_FILE,
    SettingsStore,
)


def _node(base: Any) -> Any:
    """What the API reads of a node before it starts: the account directory and name (and
    the bandwidth limit SetMaxDataRates sets)."""
    return types.SimpleNamespace(account=types.SimpleNamespace(base_dir=base, name="alice"),
                                 bandwidth=types.SimpleNamespace(max_rate=0))


def _call(api: JsonApiService, path: str, params: dict[str, Any],
          token: str) -> tuple[int, Any]:
    """One request over an in-memory connection: (status, JSON answer or None)."""
    body = json.dumps(params).encode()
    auth = base64.b64encode(token.encode()).decode()
    channel = api.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000))
    channel.makeConnection(transport)
    channel.dataReceived((f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    head, _, answer = transport.value().partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    channel.connectionLost(None)
    return status, json.loads(answer) if answer else None


def _api(base: Any, creds: ApiCredentials) -> JsonApiService:
    return JsonApiService(MemoryReactorClock(), _node(base), creds, port=0)


def test_settings_set_through_the_api_survive_a_restart(tmp_path) -> None:
    """Transfer, identity and reputation settings set by clients are read back by the next
    API of the same account (a restart); the file is 0600 and no temporary file remains."""
    creds = ApiCredentials.create(tmp_path, "alice")
    api = _api(tmp_path, creds)
    for path, params in (("/rsFiles/setQueueSize", {"s": 9}),
                         ("/rsConfig/SetMaxDataRates", {"downKb": 321, "upKb": 123}),
                         ("/rsIdentity/setAutoAddFriendIdsAsContact", {"enabled": False}),
                         ("/rsIdentity/setDeleteBannedNodesThreshold", {"days": 12}),
                         ("/rsReputations/setAutoPositiveOpinionForContacts", {"b": False}),
                         ("/rsReputations/setThresholdForRemotelyPositiveReputation",
                          {"thresh": 4})):
        assert _call(api, path, params, creds.token)[0] == 200
    path = tmp_path / SETTINGS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == sorted(["jsonapi.json", SETTINGS_FILE])
    again = _api(tmp_path, creds)
    answers = {p: _call(again, p, {}, creds.token)[1] for p in (
        "/rsFiles/getQueueSize", "/rsConfig/GetMaxDataRates",
        "/rsIdentity/autoAddFriendIdsAsContact", "/rsIdentity/deleteBannedNodesThreshold",
        "/rsReputations/autoPositiveOpinionForContacts",
        "/rsReputations/thresholdForRemotelyPositiveReputation")}
    assert answers == {
        "/rsFiles/getQueueSize": {"retval": 9},
        "/rsConfig/GetMaxDataRates": {"inKb": 321, "outKb": 123, "retval": 1},
        "/rsIdentity/autoAddFriendIdsAsContact": {"retval": False},
        "/rsIdentity/deleteBannedNodesThreshold": {"retval": 12},
        "/rsReputations/autoPositiveOpinionForContacts": {"retval": False},
        "/rsReputations/thresholdForRemotelyPositiveReputation": {"retval": 4}}


def test_authorized_tokens_work_survive_a_restart_and_can_be_revoked(tmp_path) -> None:
    """authorizeUser adds a user:password clients may use with Basic auth, listed by
    getAuthorizedTokens, still valid after a restart; revokeAuthToken ends it; a user with
    ':' is refused (RetroShare's error 2007)."""
    creds = ApiCredentials.create(tmp_path, "alice")
    api = _api(tmp_path, creds)
    status, answer = _call(api, "/rsJsonApi/authorizeUser",
                           {"user": "bot", "password": "pw 1"}, creds.token)
    assert (status, answer["retval"]["errorNumber"]) == (200, 0)
    assert _call(api, "/rsJsonApi/authorizeUser", {"user": "a:b", "password": "x"},
                 creds.token)[1]["retval"]["errorNumber"] == 2007
    assert _call(api, "/rsJsonApi/getAuthorizedTokens", {}, "bot:wrong")[0] == 401
    again = _api(tmp_path, creds)
    status, tokens = _call(again, "/rsJsonApi/getAuthorizedTokens", {}, "bot:pw 1")
    assert status == 200
    assert tokens == {"retval": [{"key": "alice", "value": creds.password},
                                 {"key": "bot", "value": "pw 1"}]}
    assert _call(again, "/rsJsonApi/isAuthTokenValid", {"token": "bot:pw 1"},
                 creds.token)[1]["retval"] is True
    assert _call(again, "/rsJsonApi/revokeAuthToken", {"user": "bot"},
                 creds.token)[1] == {"retval": True}
    assert _call(_api(tmp_path, creds), "/rsJsonApi/getAuthorizedTokens", {},
                 "bot:pw 1")[0] == 401


def test_saved_address_is_used_by_rsnode_run_unless_jsonapi_is_given(tmp_path) -> None:
    """setBindingAddress / setListeningPort are saved and ``rsnode run`` listens there next
    time (an explicit --jsonapi wins); a non-loopback address is not taken from a
    loopback-only API."""
    creds = ApiCredentials.create(tmp_path, "alice")
    api = _api(tmp_path, creds)
    _call(api, "/rsJsonApi/setBindingAddress", {"bindAddress": "10.1.2.3"}, creds.token)
    assert SettingsStore(tmp_path).load().listen_host is None
    _call(api, "/rsJsonApi/setBindingAddress", {"bindAddress": "127.0.0.2"}, creds.token)
    _call(api, "/rsJsonApi/setListeningPort", {"port": 9393}, creds.token)
    args = argparse.Namespace(jsonapi="", base_dir=tmp_path, webui=None,
                              jsonapi_remote=False)
    reactor = MemoryReactorClock()
    assert api_service(reactor, _node(tmp_path), args).address == ("127.0.0.2", 9393)
    args.jsonapi = "127.0.0.1:9500"
    assert api_service(reactor, _node(tmp_path), args).address == ("127.0.0.1", 9500)


def test_a_damaged_settings_file_falls_back_to_defaults(tmp_path) -> None:
    """Unreadable JSON, a non-object, or values of the wrong type or range are ignored
    (defaults), while the valid values of the same file are kept."""
    path = tmp_path / SETTINGS_FILE
    store = SettingsStore(tmp_path)
    path.write_text("{not json")
    assert store.load() == ApiSettings()
    path.write_text("[1, 2]")
    assert store.load() == ApiSettings()
    path.write_text(json.dumps({"queue_size": "nine", "listen_port": 70000,
                                "listen_host": "not an address", "contacts": ["xyz"],
                                "authorized": {"a:b": "c"}, "operating_mode": 3,
                                "auto_add_friend_ids_as_contact": 1}))
    loaded = store.load()
    assert loaded == ApiSettings(operating_mode=3)


def test_authorized_tokens_are_bounded() -> None:
    """At most MAX_AUTHORIZED_TOKENS tokens: one more user is refused; changing the
    password of a known user still works."""
    ctx = ApiContext(None, MemoryReactorClock())
    for i in range(MAX_AUTHORIZED_TOKENS):
        assert authorize_user(ctx, Params({"user": f"u{i}", "password": "p"}))[
            "retval"]["errorNumber"] == 0
    assert authorize_user(ctx, Params({"user": "one-more", "password": "p"}))[
        "retval"]["errorNumber"] == 2004
    assert authorize_user(ctx, Params({"user": "u0", "password": "new"}))[
        "retval"]["errorNumber"] == 0
    assert len(ctx.settings.authorized) == MAX_AUTHORIZED_TOKENS
    assert ctx.settings.authorized["u0"] == "new"


def test_regular_contacts_are_bounded() -> None:
    """At most MAX_CONTACTS identities are set as contacts; removing one makes room."""
    ctx = ApiContext(None, MemoryReactorClock())
    for i in range(MAX_CONTACTS):
        assert set_as_regular_contact(ctx, Params({"id": f"{i + 1:032x}", "isContact": True}))[
            "retval"] is True
    extra = {"id": "f" * 32, "isContact": True}
    assert set_as_regular_contact(ctx, Params(extra))["retval"] is False
    set_as_regular_contact(ctx, Params({"id": f"{1:032x}", "isContact": False}))
    assert set_as_regular_contact(ctx, Params(extra))["retval"] is True
    assert len(ctx.settings.contacts) == MAX_CONTACTS


def test_a_saved_upload_limit_is_applied_to_the_node_at_start(tmp_path) -> None:
    """The upload limit a client set (SetMaxDataRates) is put back on the node's bandwidth
    control when the API starts again; RetroShare's default leaves the node's own limit."""
    SettingsStore(tmp_path).save(ApiSettings(max_out_kb=123))
    node = _node(tmp_path)
    ctx = ApiContext(node, MemoryReactorClock())
    ctx.settings = SettingsStore(tmp_path).load()
    rs_config.attach(ctx)
    assert node.bandwidth.max_rate == 123 * 1024
    untouched = _node(tmp_path)
    ctx = ApiContext(untouched, MemoryReactorClock())
    rs_config.attach(ctx)
    assert untouched.bandwidth.max_rate == 0
