# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsPeers/*``: friends, their details and state, certificates and invites."""

from __future__ import annotations

from typing import Any, Final

from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import FriendsError, UnknownFriendError
from pqi.identity.invite import DEFAULT_INVITE_BASE, ShortInvite
from pqi.identity.pgp import PublicKey
from pqi.wire.errors import DecodeError
from pqi.wire.fields import PgpFingerprint, PgpId, SslId

from .api import ApiContext, EndpointTable
from .encoding import NULL_PGP_ID, NULL_SSL_ID, Params, x64
from .events import FriendCode, friend_event

__all__ = ["ENDPOINTS", "peer_details", "DEFAULT_GROUPS"]

ENDPOINTS = EndpointTable()

#: RetroShare's built-in friend groups (id, name).
DEFAULT_GROUPS: Final = ((1, "Friends"), (2, "Family"), (3, "Co-Workers"),
                         (4, "Other Contacts"), (5, "Favorites"))
#: ``state`` bits: RS_PEER_STATE_FRIEND, RS_PEER_STATE_ONLINE.
STATE_FRIEND: Final = 1
STATE_ONLINE: Final = 4
#: ``connectState`` of a connected friend, ``linkType`` values seen for own node / a link.
CONNECTED_TCP: Final = 4
LINK_OWN: Final = 1
LINK_TCP: Final = 33816577
#: Certificate parse results (CERTIFICATE_PARSE_ERROR_*): no error, a bad certificate,
#: a bad short invite.
PARSE_OK: Final = 16
PARSE_BAD_CERT: Final = 24
PARSE_BAD_INVITE: Final = 27
#: Certificates ``loadCertificateFromString`` keeps for a later ``addSslOnlyFriend`` (the
#: "keyring" RetroShare adds their keys to).
MAX_LOADED_CERTS: Final = 64
#: ``trustLvl`` of our own profile and of a friend.
TRUST_ULTIMATE: Final = 5
TRUST_FRIEND: Final = 1
NET_MODE_EXT: Final = 2


def peer_details(**values: Any) -> dict[str, Any]:
    """A ``RsPeerDetails`` record: RetroShare's member order, unknown-peer defaults."""
    record: dict[str, Any] = {
        "isOnlyGPGdetail": False, "id": NULL_SSL_ID, "gpg_id": NULL_PGP_ID, "name": "",
        "email": "", "location": "", "org": "", "issuer": NULL_PGP_ID, "fpr": "0" * 40,
        "authcode": "", "gpgSigners": [], "trustLvl": 0, "validLvl": 0, "ownsign": False,
        "hasSignedMe": False, "accept_connection": False, "service_perm_flags": 0,
        "state": 0, "actAsServer": False, "connectAddr": "", "connectPort": 0,
        "isHiddenNode": False, "hiddenNodeAddress": "", "hiddenNodePort": 0,
        "hiddenType": 0, "localAddr": "", "localPort": 0, "extAddr": "", "extPort": 0,
        "dyndns": "", "ipAddressList": [], "netMode": 0, "vs_disc": 0, "vs_dht": 0,
        "lastConnect": 0, "lastUsed": 0, "connectState": 0, "connectStateString": "",
        "connectPeriod": 0, "foundDHT": False, "wasDeniedConnection": False,
        "deniedTS": x64(0), "linkType": LINK_OWN}
    for key, value in values.items():
        if key not in record:
            raise KeyError(key)
        record[key] = value
    return record


def _addr(address: Any) -> tuple[str, int]:
    if address is None:
        return "INVALID_IP", 0
    return str(address.host), address.port


def _own_details(ctx: ApiContext) -> dict[str, Any]:
    node = ctx.node
    profile = node.account.profile
    local, local_port = _addr(node.listening)
    ext, ext_port = _addr(node.external_address)
    return peer_details(
        id=node.ssl_id.to_hex(), gpg_id=node.pgp_id.to_hex(), name=node.account.name,
        location=node.account.location_name, fpr=profile.fingerprint.to_hex(),
        authcode="AUTHCODE", gpgSigners=[node.pgp_id.to_hex()], trustLvl=TRUST_ULTIMATE,
        validLvl=TRUST_ULTIMATE, ownsign=True, hasSignedMe=True, localAddr=local,
        localPort=local_port, extAddr=ext, extPort=ext_port, netMode=NET_MODE_EXT,
        vs_disc=2, vs_dht=2, lastUsed=ctx.now())


def _friend_details(ctx: ApiContext, ssl_id: SslId) -> dict[str, Any] | None:
    node = ctx.node
    try:
        location = node.friends_list.location(ssl_id)
    except UnknownFriendError:
        return None
    profile = node.friends_list.profile(location.pgp_id)
    person = node.net.person(ssl_id)
    online = person is not None and person.connected
    known = [a.addr for a in location.addresses if a.addr is not None]
    local, local_port = _addr(known[0] if known else None)
    connect, connect_port = ("", 0)
    if online and person.address is not None:
        connect, connect_port = _addr(person.address)
    last = location.last_connected or 0
    return peer_details(
        id=ssl_id.to_hex(), gpg_id=location.pgp_id.to_hex(), name=profile.name,
        location=location.name, fpr=profile.fingerprint.to_hex(), authcode="AUTHCODE",
        gpgSigners=[location.pgp_id.to_hex()], trustLvl=TRUST_FRIEND, validLvl=TRUST_FRIEND,
        accept_connection=True, state=STATE_FRIEND | (STATE_ONLINE if online else 0),
        connectAddr=connect, connectPort=connect_port, localAddr=local, localPort=local_port,
        extAddr="INVALID_IP", netMode=NET_MODE_EXT, vs_disc=2, vs_dht=2,
        lastConnect=last & 0xFFFFFFFF, lastUsed=(last or ctx.now()) & 0xFFFFFFFF,
        connectState=CONNECTED_TCP if online else 0,
        linkType=LINK_TCP if online else 0)


def _cert_details(cert: RsCertificate) -> dict[str, Any]:
    key = cert.public_key
    local, local_port = _addr(cert.local_addr)
    ext, ext_port = _addr(cert.ext_addr)
    return peer_details(
        id=cert.ssl_id.to_hex() if cert.ssl_id else NULL_SSL_ID, gpg_id=key.pgp_id.to_hex(),
        name=key.name, location=cert.location, gpgSigners=[key.pgp_id.to_hex()],
        localAddr=local, localPort=local_port, extAddr=ext, extPort=ext_port,
        dyndns=cert.dns)


def _invite_details(invite: ShortInvite, friend: bool) -> dict[str, Any]:
    pgp = invite.pgp_id.to_hex() if invite.pgp_id else NULL_PGP_ID
    values: dict[str, Any] = {}
    for locator in invite.locators:
        address = getattr(locator, "address", None)
        if address is None:
            continue
        kind = type(locator).__name__
        if kind.startswith("Loc4"):
            values["localAddr"], values["localPort"] = _addr(address)
        elif kind.startswith("Ext4"):
            values["extAddr"], values["extPort"] = _addr(address)
    return peer_details(
        id=invite.ssl_id.to_hex(), gpg_id=pgp, name=invite.name,
        fpr=invite.pgp_fingerprint.to_hex() if invite.pgp_fingerprint else "0" * 40,
        gpgSigners=[pgp] if friend else [], trustLvl=int(friend), validLvl=int(friend),
        accept_connection=friend, **values)


def _ssl(text: str) -> SslId:
    return SslId.from_hex(text)


def _friends(ctx: ApiContext) -> list[str]:
    """Friend locations in RetroShare's order (its friend map is keyed by SSL id)."""
    return sorted(loc.ssl_id.to_hex() for loc in ctx.node.friends_list.locations())


def _online(ctx: ApiContext) -> list[str]:
    return [s for s in _friends(ctx)
            if (p := ctx.node.net.person(SslId.from_hex(s))) is not None and p.connected]


@ENDPOINTS.add("/rsPeers/getFriendList")
def get_friend_list(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"sslIds": _friends(ctx), "retval": True}


@ENDPOINTS.add("/rsPeers/getOnlineList")
def get_online_list(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"sslIds": _online(ctx), "retval": True}


@ENDPOINTS.add("/rsPeers/isOnline")
def is_online(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": p.ssl_id("sslId") in _online(ctx)}


@ENDPOINTS.add("/rsPeers/isFriend")
def is_friend(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        ctx.node.friends_list.location(_ssl(p.ssl_id("sslId")))
    except UnknownFriendError:
        return {"retval": False}
    return {"retval": True}


@ENDPOINTS.add("/rsPeers/getOwnId")
def get_own_id(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.node.ssl_id.to_hex()}


@ENDPOINTS.add("/rsPeers/getPeerDetails")
def get_peer_details(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ssl_id = p.ssl_id("sslId")
    if ssl_id == ctx.node.ssl_id.to_hex():
        return {"det": _own_details(ctx), "retval": True}
    found = _friend_details(ctx, _ssl(ssl_id)) if ssl_id != NULL_SSL_ID else None
    if found is None:
        return {"det": peer_details(), "retval": False}
    return {"det": found, "retval": True}


@ENDPOINTS.add("/rsPeers/getGroupInfoList")
def get_group_info_list(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"groupInfoList": [{"id": f"{n:032x}", "name": name, "flag": 1, "peerIds": []}
                              for n, name in DEFAULT_GROUPS], "retval": True}


@ENDPOINTS.add("/rsPeers/getProxyServer")
def get_proxy_server(ctx: ApiContext, p: Params) -> dict[str, Any]:
    if p.int("type") == 2:
        return {"addr": "127.0.0.1", "port": 9050, "status_flags": 0, "retval": True}
    return {"addr": "INVALID_IP", "port": 0, "status_flags": 0, "retval": True}


@ENDPOINTS.add("/rsPeers/GetRetroshareInvite")
def get_retroshare_invite(ctx: ApiContext, p: Params) -> dict[str, Any]:
    node = ctx.node
    ssl_id = p.ssl_id("sslId")
    if ssl_id in (NULL_SSL_ID, node.ssl_id.to_hex()):
        return {"retval": node.account.certificate_text(local_addr=node.listening,
                                                        ext_addr=node.external_address)}
    try:
        location = node.friends_list.location(_ssl(ssl_id))
        profile = node.friends_list.profile(location.pgp_id)
    except UnknownFriendError:
        return {"retval": ""}
    if profile.public_key is None:
        return {"retval": ""}
    known = [a.addr for a in location.addresses if a.addr is not None]
    cert = RsCertificate(PublicKey.from_bytes(profile.public_key), location.ssl_id,
                         location.name, known[0] if known else None, None)
    return {"retval": cert.encode()}


@ENDPOINTS.add("/rsPeers/getShortInvite")
def get_short_invite(ctx: ApiContext, p: Params) -> dict[str, Any]:
    node = ctx.node
    invite = node.account.short_invite(local_addr=node.listening,
                                       ext_addr=node.external_address)
    base = p.str("baseUrl", DEFAULT_INVITE_BASE)
    return {"invite": invite.to_url(base) if base else invite.encode(), "retval": True}


def _added(ctx: ApiContext, ssl_id: SslId | None, pgp_id: PgpId) -> None:
    now = ctx.now()
    if ssl_id is not None:
        ctx.publish(friend_event(now, FriendCode.NODE_ADDED, ssl_id.to_hex()))
    ctx.publish(friend_event(now, FriendCode.PROFILE_ADDED, pgp_id=pgp_id.to_hex()))


@ENDPOINTS.add("/rsPeers/acceptInvite")
def accept_invite(ctx: ApiContext, p: Params) -> dict[str, Any]:
    text = p.str("invite")
    try:
        profile = ctx.node.add_friend(text)
    except (DecodeError, FriendsError, ValueError):
        return {"retval": False}
    ssl_ids = [loc.ssl_id for loc in ctx.node.friends_list.locations(profile.pgp_id)]
    _added(ctx, ssl_ids[-1] if ssl_ids else None, profile.pgp_id)
    return {"retval": True}


@ENDPOINTS.add("/rsPeers/loadCertificateFromString")
def load_certificate_from_string(ctx: ApiContext, p: Params) -> dict[str, Any]:
    text = p.str("cert")
    try:
        cert = RsCertificate.decode(text)
    except (DecodeError, ValueError):
        return {"sslId": NULL_SSL_ID, "pgpId": NULL_PGP_ID,
                "errorString": f"RsCertificate failed with errno: {PARSE_BAD_CERT} parsing: "
                               f"{text[:256]}", "retval": False}
    loaded = ctx.extras.setdefault("loaded_certs", {})
    loaded.pop(cert.public_key.pgp_id.to_hex(), None)
    loaded[cert.public_key.pgp_id.to_hex()] = cert
    while len(loaded) > MAX_LOADED_CERTS:
        loaded.pop(next(iter(loaded)))
    return {"sslId": cert.ssl_id.to_hex() if cert.ssl_id else NULL_SSL_ID,
            "pgpId": cert.public_key.pgp_id.to_hex(), "errorString": "", "retval": True}


@ENDPOINTS.add("/rsPeers/loadDetailsFromStringCert")
def load_details_from_string_cert(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        cert = RsCertificate.decode(p.str("cert"))
    except (DecodeError, ValueError):
        return {"certDetails": peer_details(), "errorCode": PARSE_BAD_CERT, "retval": False}
    return {"certDetails": _cert_details(cert), "errorCode": PARSE_OK, "retval": True}


@ENDPOINTS.add("/rsPeers/parseShortInvite")
def parse_short_invite(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        invite = ShortInvite.decode(p.str("invite"))
    except (DecodeError, ValueError):
        return {"details": peer_details(), "err_code": PARSE_BAD_INVITE, "retval": False}
    try:
        ctx.node.friends_list.location(invite.ssl_id)
        friend = True
    except UnknownFriendError:
        friend = False
    return {"details": _invite_details(invite, friend), "err_code": PARSE_OK, "retval": True}


@ENDPOINTS.add("/rsPeers/addSslOnlyFriend")
def add_ssl_only_friend(ctx: ApiContext, p: Params) -> dict[str, Any]:
    """A location by SSL id, its profile by the key of a certificate loaded before
    (``loadCertificateFromString``) or by the fingerprint in ``details``."""
    details = p.sub("details")
    ssl_id = p.ssl_id("sslId")
    pgp_id = p.pgp_id("pgpId")
    if ssl_id == NULL_SSL_ID:
        return {"retval": False}
    cert = ctx.extras.get("loaded_certs", {}).get(pgp_id)
    try:
        if cert is not None and cert.ssl_id is not None and cert.ssl_id.to_hex() == ssl_id:
            profile = ctx.node.add_friend(cert.encode())
            location = ctx.node.friends_list.location(cert.ssl_id)
            _added(ctx, location.ssl_id, profile.pgp_id)
            return {"retval": True}
        fingerprint = PgpFingerprint.from_hex(details.str("fpr"))
        if fingerprint.to_hex() == "0" * 40 or fingerprint.to_hex()[-16:] != pgp_id:
            return {"retval": False}
        location = ctx.node.friends_list.add_ssl_only(
            _ssl(ssl_id), fingerprint, details.str("name"), details.str("location"))
    except (ValueError, DecodeError, FriendsError):
        return {"retval": False}
    ctx.node.net.add_friend(location.ssl_id)
    _added(ctx, location.ssl_id, location.pgp_id)
    return {"retval": True}


@ENDPOINTS.add("/rsPeers/removeFriend")
def remove_friend(ctx: ApiContext, p: Params) -> dict[str, Any]:
    pgp = p.pgp_id("pgpId")
    try:
        ctx.node.remove_friend(PgpId.from_hex(pgp))
    except (UnknownFriendError, ValueError):
        pass
    return {"retval": True}


@ENDPOINTS.add("/rsPeers/connectAttempt")
def connect_attempt(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ssl_id = _ssl(p.ssl_id("sslId"))
    try:
        location = ctx.node.friends_list.location(ssl_id)
    except UnknownFriendError:
        return {"retval": False}
    for info in location.addresses:
        if info.addr is not None and info.addr.port:
            ctx.node.net.add_address(ssl_id, info.addr)
    return {"retval": True}


@ENDPOINTS.add("/rsPeers/setVisState", "/rsPeers/setNetworkMode", "/rsPeers/setDynDNS",
               "/rsPeers/setProxyServer",
               note="network settings are chosen on rsnode's command line: refused")
def network_setting(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}
