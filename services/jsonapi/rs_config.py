# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsConfig/*``: network status, data rates, operating mode."""

from __future__ import annotations

from typing import Any

from .api import ApiContext, ApiSettings, EndpointTable
from .encoding import Params, x64

__all__ = ["ENDPOINTS"]

ENDPOINTS = EndpointTable()


@ENDPOINTS.add("/rsConfig/getConfigNetStatus")
def get_config_net_status(ctx: ApiContext, p: Params) -> dict[str, Any]:
    node = ctx.node
    local = node.listening
    ext = node.external_address
    udp = node.udp.status() if node.udp is not None else None
    return {"status": {
        "ownId": node.ssl_id.to_hex(), "ownName": node.account.name,
        "localAddr": str(local.host) if local else "0.0.0.0",
        "localPort": local.port if local else 0,
        "extAddr": str(ext.host) if ext else "0.0.0.0", "extPort": ext.port if ext else 0,
        "extDynDns": "", "firewalled": ext is None, "forwardPort": True,
        "DHTActive": udp is not None, "uPnPActive": node.upnp is not None,
        "uPnPState": 0, "netLocalOk": local is not None, "netUpnpOk": ext is not None,
        "netDhtOk": udp is not None, "netStunOk": False, "netExtAddressOk": ext is not None,
        "netDhtNetSize": 0, "netDhtRsNetSize": 0}, "retval": 1}


def attach(ctx: ApiContext) -> None:
    """Apply a saved upload limit (one a client set before a restart) to the node."""
    bandwidth = getattr(ctx.node, "bandwidth", None)
    if bandwidth is not None and ctx.settings.max_out_kb not in (0, ApiSettings.max_out_kb):
        bandwidth.max_rate = ctx.settings.max_out_kb * 1024


@ENDPOINTS.add("/rsConfig/GetMaxDataRates")
def get_max_data_rates(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"inKb": ctx.settings.max_in_kb, "outKb": ctx.settings.max_out_kb, "retval": 1}


@ENDPOINTS.add("/rsConfig/SetMaxDataRates")
def set_max_data_rates(ctx: ApiContext, p: Params) -> dict[str, Any]:
    down = p.int("downKb", ctx.settings.max_in_kb, lo=0)
    up = p.int("upKb", ctx.settings.max_out_kb, lo=0)
    ctx.settings.max_in_kb, ctx.settings.max_out_kb = down, up
    if up > 0:
        ctx.node.bandwidth.max_rate = up * 1024
    return {"retval": 1}


def _rates(ctx: ApiContext) -> tuple[float, float]:
    """Current (in, out) kB/s over every link."""
    rate_in = rate_out = 0.0
    for peer in ctx.node.net.connected_peers():
        person = ctx.node.net.person(peer.ssl_id)
        link = getattr(person, "link", None)
        rate_in += float(getattr(link, "rate_in", 0.0) or 0.0)
        rate_out += float(getattr(link, "rate_out", 0.0) or 0.0)
    return rate_in / 1024, rate_out / 1024


@ENDPOINTS.add("/rsConfig/GetCurrentDataRates")
def get_current_data_rates(ctx: ApiContext, p: Params) -> dict[str, Any]:
    rate_in, rate_out = _rates(ctx)
    return {"inKb": rate_in, "outKb": rate_out, "retval": 1}


@ENDPOINTS.add("/rsConfig/getTotalBandwidthRates")
def get_total_bandwidth_rates(ctx: ApiContext, p: Params) -> dict[str, Any]:
    rate_in, rate_out = _rates(ctx)
    return {"rates": {
        "mRateIn": rate_in, "mRateMaxIn": float(ctx.settings.max_in_kb), "mAllocIn": 0.0,
        "mAllocTs": x64(0), "mRateOut": rate_out,
        "mRateMaxOut": float(ctx.settings.max_out_kb), "mAllowedOut": 0.0,
        "mAllowedTs": x64(0), "mQueueIn": 0, "mQueueOut": 0, "mQueueOutBytes": 0,
        "mTotalIn": x64(0), "mTotalOut": x64(0)}, "retval": 1}


@ENDPOINTS.add("/rsConfig/getOperatingMode")
def get_operating_mode(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.settings.operating_mode}


@ENDPOINTS.add("/rsConfig/setOperatingMode", note="remembered; the node does not act on it")
def set_operating_mode(ctx: ApiContext, p: Params) -> dict[str, Any]:
    mode = p.int("opMode", 0)
    if not 1 <= mode <= 4:
        return {"retval": False}
    ctx.settings.operating_mode = mode
    return {"retval": True}
