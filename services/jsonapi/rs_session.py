# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsLoginHelper/*``, ``/rsAccounts/*``, ``/rsControl/*`` and ``/rsJsonApi/*``: the
session calls RetroShare serves without authentication (and the few that need it).

``rsnode`` runs one account, unlocked when it starts, so it is always "logged in":
``isLoggedIn`` is true, ``attemptLogin`` checks the password of the running account, and
``createLocationV2`` answers that a location runs already.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final

from pqi.identity.account import Account
from pqi.identity.errors import AccountError

from .api import ApiContext, EndpointTable
from .encoding import NULL_PGP_ID, NULL_SSL_ID, Params, error_condition, success_condition
from .settings import MAX_AUTHORIZED_TOKENS, valid_token_part

__all__ = ["ENDPOINTS", "VERSION", "API_ERROR_CATEGORY"]

ENDPOINTS = EndpointTable()

#: The RetroShare version whose API rsproto serves, and rsproto's mark in ``extra``.
VERSION: Final = {"major": 0, "minor": 6, "mini": 7, "extra": "-rsproto",
                  "human": "0.6.7-rsproto"}
#: Category of the JSON API's own error conditions.
API_ERROR_CATEGORY: Final = "RetroShare JSON API"
#: ``RsInit::LoadCertificateStatus``: OK, and what a second login answers.
LOGIN_OK: Final = 0
LOGIN_ALREADY_RUNNING: Final = 1


def _locations(ctx: ApiContext) -> list[dict[str, Any]]:
    node = ctx.node
    if node is None:
        return []
    return [{"mLocationId": node.ssl_id.to_hex(), "mPgpId": node.pgp_id.to_hex(),
             "mLocationName": node.account.location_name, "mPgpName": node.account.name}]


@ENDPOINTS.add("/rsLoginHelper/isLoggedIn", auth=False, login=False)
def is_logged_in(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.node is not None}


@ENDPOINTS.add("/rsLoginHelper/getLocations", auth=False, login=False)
def get_locations(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"locations": _locations(ctx)}


@ENDPOINTS.add("/rsLoginHelper/attemptLogin", auth=False, login=False,
               note="checks the password of the running account; no account switching")
def attempt_login(ctx: ApiContext, p: Params) -> dict[str, Any]:
    node = ctx.node
    if node is None or p.ssl_id("account") != node.ssl_id.to_hex():
        return {"retval": LOGIN_ALREADY_RUNNING}
    try:
        Account.load(node.account.base_dir, p.str("password"))
    except (AccountError, ValueError):
        return {"retval": LOGIN_ALREADY_RUNNING}
    return {"retval": LOGIN_OK}


@ENDPOINTS.add("/rsLoginHelper/createLocationV2", auth=False, login=False,
               note="accounts are created with `rsnode init`; answers an error")
def create_location_v2(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"locationId": NULL_SSL_ID, "pgpId": NULL_PGP_ID,
            "retval": error_condition(1, API_ERROR_CATEGORY,
                                      "a location is running; create accounts with "
                                      "`rsnode init`")}


@ENDPOINTS.add("/rsLoginHelper/collectEntropy", auth=False, login=False)
def collect_entropy(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": True}


@ENDPOINTS.add("/rsAccounts/getCurrentAccountId", auth=False, login=False)
def get_current_account_id(ctx: ApiContext, p: Params) -> dict[str, Any]:
    if ctx.node is None:
        return {"id": NULL_SSL_ID, "retval": False}
    return {"id": ctx.node.ssl_id.to_hex(), "retval": True}


@ENDPOINTS.add("/rsAccounts/GetPGPLogins", auth=False, login=False)
def get_pgp_logins(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ids = [] if ctx.node is None else [ctx.node.pgp_id.to_hex()]
    return {"pgpIds": ids, "retval": 1}


@ENDPOINTS.add("/rsControl/isReady")
def is_ready(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": bool(ctx.node.running)}


@ENDPOINTS.add("/rsJsonApi/version", auth=False, login=False)
def version(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return dict(VERSION)


@ENDPOINTS.add("/rsJsonApi/isAuthTokenValid", auth=False, login=False)
def is_auth_token_valid(ctx: ApiContext, p: Params) -> dict[str, Any]:
    if ctx.credentials is not None and ctx.credentials.check_token(p.str("token")):
        return {"error": success_condition(), "retval": True}
    return {"error": error_condition(2005, API_ERROR_CATEGORY, "Unknown API user"),
            "retval": False}


@ENDPOINTS.add("/rsJsonApi/requestNewTokenAutorization", auth=False, login=False,
               note="no interactive authorisation on a headless node: always refused")
def request_new_token_autorization(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": error_condition(2007, API_ERROR_CATEGORY,
                                      "authorisation refused: use `rsnode api-token`")}


@ENDPOINTS.add("/rsJsonApi/getBindingAddress")
def get_binding_address(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.host}


@ENDPOINTS.add("/rsJsonApi/listeningPort")
def listening_port(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.port}


# --- tokens and address, saved in the account (services.jsonapi.settings) -----------------

@ENDPOINTS.add("/rsJsonApi/authorizeUser", note="saved in the account (jsonapi-settings.json)")
def authorize_user(ctx: ApiContext, p: Params) -> dict[str, Any]:
    user, password = p.str("user"), p.str("password")
    if ":" in user:
        return {"retval": error_condition(2007, API_ERROR_CATEGORY,
                                          "API user name contains ':'")}
    authorized = ctx.settings.authorized
    if not valid_token_part(user, user=True) or not valid_token_part(password):
        return {"retval": error_condition(2004, API_ERROR_CATEGORY, "invalid token format")}
    if user not in authorized and len(authorized) >= MAX_AUTHORIZED_TOKENS:
        return {"retval": error_condition(2004, API_ERROR_CATEGORY,
                                          f"{MAX_AUTHORIZED_TOKENS} tokens authorised already")}
    authorized[user] = password
    return {"retval": success_condition()}


@ENDPOINTS.add("/rsJsonApi/revokeAuthToken")
def revoke_auth_token(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.settings.authorized.pop(p.str("user"), None) is not None}


@ENDPOINTS.add("/rsJsonApi/getAuthorizedTokens",
               note="the account's own credentials are listed first")
def get_authorized_tokens(ctx: ApiContext, p: Params) -> dict[str, Any]:
    tokens = [] if ctx.credentials is None else [
        {"key": ctx.credentials.user, "value": ctx.credentials.password}]
    tokens += [{"key": u, "value": pw} for u, pw in sorted(ctx.settings.authorized.items())]
    return {"retval": tokens}


@ENDPOINTS.add("/rsJsonApi/setBindingAddress",
               note="saved; used at the next start unless --jsonapi is given; a non-loopback "
                    "address is ignored unless the API was started with --jsonapi-remote")
def set_binding_address(ctx: ApiContext, p: Params) -> dict[str, Any]:
    text = p.str("bindAddress")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return {}
    if address.is_loopback or ctx.allow_remote:
        ctx.settings.listen_host = str(address)
    return {}


@ENDPOINTS.add("/rsJsonApi/setListeningPort",
               note="saved; used at the next start unless --jsonapi is given")
def set_listening_port(ctx: ApiContext, p: Params) -> dict[str, Any]:
    port = p.int("port", -1, lo=1, hi=65535)
    if port > 0:
        ctx.settings.listen_port = port
    return {}
