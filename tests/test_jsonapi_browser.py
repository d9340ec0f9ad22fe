"""A real browser against the JSON API: headless Chromium (Debian's ``chromium``, installed
by .ci/run) loads a page from another origin that logs in and reads the friend list with
``fetch`` — so the browser enforces CORS, including the preflight for the Authorization
header — and opens the event stream.  The browser is killed whatever happens."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import pytest
from twisted.internet import defer, protocol
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.jsonapi_helpers import start_pair
from tests.service_fakes import on_fresh_reactor

pytestmark = [pytest.mark.timeout(180), pytest.mark.integration]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Seconds the browser may take before it is killed.
BROWSER_TIMEOUT = 90

PAGE = """<!doctype html><html><body><script>
const api = "http://127.0.0.1:%(port)d";
const auth = "Basic " + btoa("%(user)s:%(password)s");
async function call(path, body, token) {
  const r = await fetch(api + path, {method: "POST", body: JSON.stringify(body || {}),
      headers: {"Authorization": token || auth, "Content-Type": "application/json"}});
  return {status: r.status, json: r.status === 200 ? await r.json() : null};
}
async function firstEvents(n) {
  const r = await fetch(api + "/rsEvents/registerEventsHandler", {method: "POST",
      body: JSON.stringify({eventType: 0}),
      headers: {"Authorization": auth, "Content-Type": "application/json"}});
  const reader = r.body.getReader();
  let text = "";
  while ((text.match(/\\n\\n/g) || []).length < n) {
    const {value, done} = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.cancel();
  return {type: r.headers.get("Content-Type"), frames: text.split("\\n\\n").slice(0, n)};
}
(async () => {
  const out = {};
  try {
    out.loggedIn = (await call("/rsLoginHelper/isLoggedIn")).json.retval;
    out.tokenValid = (await call("/rsJsonApi/isAuthTokenValid",
                                 {token: "%(user)s:%(password)s"})).json.retval;
    out.wrongPassword = (await call("/rsPeers/getFriendList", {},
                                    "Basic " + btoa("%(user)s:wrong"))).status;
    const friends = (await call("/rsPeers/getFriendList")).json;
    out.friends = friends.sslIds;
    out.details = [];
    for (const id of friends.sslIds) {
      const d = (await call("/rsPeers/getPeerDetails", {sslId: id})).json.det;
      out.details.push({name: d.name, online: (d.state & 4) !== 0});
    }
    out.events = await firstEvents(2);
  } catch (e) {
    out.error = String(e);
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(out)});
})();
</script></body></html>
"""


class _Page(Resource):
    """The page (another origin than the API) and where it reports its findings."""

    isLeaf = True  # noqa: N815 (twisted.web name)

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html = html.encode()
        self.report: defer.Deferred[bytes] = defer.Deferred()

    def render_GET(self, request: Any) -> bytes:  # noqa: N802
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        return self.html

    def render_POST(self, request: Any) -> bytes:  # noqa: N802
        if not self.report.called:
            self.report.callback(request.content.read())
        return b"ok"


class _Collect(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:  # noqa: N802
        self.out += data

    def processEnded(self, reason: Any) -> None:  # noqa: N802
        self.done.callback(self.out)


async def _browse(reactor: Any, tmp_path: Any) -> dict[str, Any]:
    pair = await start_pair(reactor, tmp_path, share=False, keepalive=0.5)
    page_port = None
    process = None
    profile = tempfile.mkdtemp(prefix="rsproto-chromium-")
    try:
        creds = pair.creds["alice"]
        html = PAGE % {"port": pair.port("alice"), "user": creds.user,
                       "password": creds.password}
        page = _Page(html)
        page_port = reactor.listenTCP(0, Site(page), interface="127.0.0.1")
        url = f"http://127.0.0.1:{page_port.getHost().port}/page.html"
        collect = _Collect()
        process = reactor.spawnProcess(collect, CHROMIUM, [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={profile}", url],
            env={"PATH": os.environ.get("PATH", ""), "HOME": profile})
        report = await page.report.addTimeout(BROWSER_TIMEOUT, reactor)
    finally:
        if process is not None and process.pid is not None:
            try:
                process.signalProcess("KILL")
            except Exception:  # noqa: BLE001 - it already exited
                pass
            await collect.done
        if page_port is not None:
            await page_port.stopListening()
        bob_id = pair.bob.ssl_id.to_hex()
        await pair.stop()
        shutil.rmtree(profile, ignore_errors=True)
    return {"result": json.loads(report), "bob": bob_id}


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: Any) -> dict[str, Any]:
    assert CHROMIUM, "chromium is not installed (.ci/run installs Debian's chromium)"
    tmp = tmp_path_factory.mktemp("browser")
    return on_fresh_reactor(lambda reactor: _browse(reactor, tmp), 150)


def test_browser_logs_in_and_reads_the_friend_list(browsed) -> None:
    """From another origin, with the CORS rules a browser enforces (preflight for the
    Authorization header), the page logs in and reads bob as an online friend."""
    result = browsed["result"]
    assert "error" not in result, result
    assert result["loggedIn"] is True and result["tokenValid"] is True
    assert result["friends"] == [browsed["bob"]]
    assert result["details"] == [{"name": "bob", "online": True}]


def test_browser_sees_401_for_a_wrong_password(browsed) -> None:
    """A wrong password is a 401 the page can read (the CORS headers are on it too)."""
    assert browsed["result"]["wrongPassword"] == 401


def test_browser_reads_the_event_stream(browsed) -> None:
    """The browser streams registerEventsHandler: text/event-stream, the registration
    answer first, then event frames."""
    events = browsed["result"]["events"]
    assert events["type"] == "text/event-stream"
    assert events["frames"][0] == ('data: {"retval":{"errorNumber":0,"errorCategory":'
                                   '"generic","errorMessage":"Success"}}')
    assert events["frames"][1].startswith('data: {"event":{"mType":')
