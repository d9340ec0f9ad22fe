# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsServiceControl/*``: the services we run, what each friend runs, permissions."""

from __future__ import annotations

from typing import Any

from pqi.wire.fields import SslId

from .api import ApiContext, EndpointTable
from .encoding import NULL_SSL_ID, Params

__all__ = ["ENDPOINTS"]

ENDPOINTS = EndpointTable()


def _entry(info: Any) -> dict[str, Any]:
    return {"key": info.service_type, "value": {
        "mServiceName": info.name, "mServiceType": info.service_type,
        "mVersionMajor": info.version_major, "mVersionMinor": info.version_minor,
        "mMinVersionMajor": info.min_version_major,
        "mMinVersionMinor": info.min_version_minor}}


def _info(peer: str, infos: Any) -> dict[str, Any]:
    return {"mPeerId": peer, "mServiceList": [_entry(i) for i in infos]}


@ENDPOINTS.add("/rsServiceControl/getOwnServices")
def get_own_services(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"info": _info(NULL_SSL_ID, ctx.node.control.our_list().values()),
            "retval": True}


def _peer_services(ctx: ApiContext, p: Params, enabled_only: bool) -> dict[str, Any]:
    peer = p.ssl_id("peerId")
    remote = ctx.node.control.remote_list(SslId.from_hex(peer))
    if remote is None:
        return {"info": _info(peer, []), "retval": False}
    if enabled_only:
        ours = ctx.node.control.our_list()
        infos = [ours[k] for k in sorted(ours) if k in remote]
    else:
        infos = [remote[k] for k in sorted(remote)]
    return {"info": _info(peer, infos), "retval": True}


@ENDPOINTS.add("/rsServiceControl/getServicesAllowed")
def get_services_allowed(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return _peer_services(ctx, p, True)


@ENDPOINTS.add("/rsServiceControl/getServicesProvided")
def get_services_provided(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return _peer_services(ctx, p, False)


def _short(service_type: int) -> int:
    return (service_type >> 8) & 0xFFFF


@ENDPOINTS.add("/rsServiceControl/getPeersConnected")
def get_peers_connected(ctx: ApiContext, p: Params) -> dict[str, Any]:
    service = _short(p.int("serviceId"))
    return {"peerSet": sorted(peer.ssl_id.to_hex()
                              for peer in ctx.node.control.peers_with(service))}


@ENDPOINTS.add("/rsServiceControl/getServiceName")
def get_service_name(ctx: ApiContext, p: Params) -> dict[str, Any]:
    info = ctx.node.control.our_list().get(p.int("serviceId"))
    return {"retval": info.name if info is not None else ""}


@ENDPOINTS.add("/rsServiceControl/getServicePermissions")
def get_service_permissions(ctx: ApiContext, p: Params) -> dict[str, Any]:
    service = p.int("serviceId")
    info = ctx.node.control.our_list().get(service)
    return {"permissions": {"mServiceId": service, "mServiceName": info.name if info else "",
                            "mDefaultAllowed": True, "mPeersAllowed": [],
                            "mPeersDenied": []}, "retval": info is not None}


@ENDPOINTS.add("/rsServiceControl/updateServicePermissions",
               note="services are always allowed for every friend; refused")
def update_service_permissions(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}

