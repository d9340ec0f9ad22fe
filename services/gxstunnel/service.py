# -*- test-case-name: tests.test_distant_nodes -*-
"""GXS tunnels and distant chat on a node: the skin of `GxsTunnelCore` and `DistantChat`.

The tunnel core rides on the node's turtle router (``node.turtle``) as a client service
(`TurtleEndpoint`); its own identities' keys and everyone's public keys come from the
identity service (``node.identities``).  A `CoreDriver` drives the core on the node's
reactor; the core's turtle actions go to the turtle service, its events to `DistantChat`,
whose events go to the node's subscribers.  The distant-messaging permissions (chat, and mail
for `services.distant_mail`) are kept in `SETTINGS_FILE`, written atomically.

Service 0x0028 is announced as RetroShare does; no item travels on a link under it (tunnel
items ride inside turtle data).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime

from pqi.driver import CoreDriver
from pqi.interfaces import IItemSender, PeerIdentity
from pqi.items import gxstunnel as gxstunnel_items
from pqi.items.ids import SERVICE_GXS_TUNNEL
from pqi.storage import atomic_write
from pqi.wire.fields import GxsId
from services.base import Service
from services.spec import Commands, ServiceSpec

from .core import GxsTunnelCore, MonitorTunnels, StopMonitoring, TunnelStatus, TurtleSend
from .distant_chat import (
    DistantChat,
    DistantChatMessage,
    DistantChatPermission,
    DistantChatRefused,
    DistantChatStatus,
    DistantChatTyping,
)
from .endpoint import TurtleEndpoint

__all__ = ["GxsTunnelService", "SPEC", "COMMANDS", "SETTINGS_FILE", "Permissions"]

#: The distant-messaging permissions in the account directory.
SETTINGS_FILE: Final = "distant.json"


class Permissions:
    """Who may reach us from afar: one `DistantChatPermission` for chat, one for mail
    (RetroShare's two sets of flags), kept in ``path``."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.chat = DistantChatPermission.EVERYONE
        self.mail = DistantChatPermission.EVERYONE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.chat = DistantChatPermission(int(data.get("chat", 0)))
            self.mail = DistantChatPermission(int(data.get("mail", 0)))
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: unreadable distant-messaging settings: {e}") from e

    def save(self) -> None:
        atomic_write(self.path, json.dumps({"chat": int(self.chat), "mail": int(self.mail)})
                     .encode("utf-8"))

    def to_json(self) -> dict[str, str]:
        return {"chat": self.chat.name.lower(), "mail": self.mail.name.lower()}


def _build(node: Any) -> GxsTunnelService | None:
    turtle = getattr(node, "turtle", None)
    identities = getattr(node, "identities", None)
    if turtle is None or identities is None:
        return None
    return GxsTunnelService(node.control, node.reactor, turtle, identities, node.emit,
                            pathlib.Path(node.account.base_dir), _contacts(node))


def _contacts(node: Any) -> Any:
    """Contacts for the "contacts only" permission: identities signed by a friend's profile."""
    def is_contact(gxs_id: GxsId) -> bool:
        pgp = node.identities.pgp_id_of(gxs_id)
        return pgp is not None and any(p.pgp_id == pgp for p in node.friends_list.profiles())
    return is_contact


#: Control commands of distant chat (``rsnode chat @ID``, ``rsnode distant``).
COMMANDS = Commands()

#: GXS tunnels and distant chat on a node (``node.distant``); needs turtle and identities.
SPEC: Final = ServiceSpec(
    SERVICE_GXS_TUNNEL, "GxsTunnels", attribute="distant",
    items=(gxstunnel_items.GxsTunnelDataItem, gxstunnel_items.GxsTunnelDhPublicKeyItem,
           gxstunnel_items.GxsTunnelStatusItem, gxstunnel_items.GxsTunnelDataAckItem),
    events=(DistantChatStatus, DistantChatMessage, DistantChatTyping, DistantChatRefused),
    commands=COMMANDS, cli="services.cli.distant:register", build=_build)


class GxsTunnelService(Service):
    """GXS tunnels and distant chat of a node (see the module docstring)."""

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime, turtle: Any,
                 identities: Any, emit: Any, base_dir: pathlib.Path,
                 is_contact: Any = lambda g: False) -> None:
        super().__init__(sender, reactor)
        self.turtle = turtle
        self.identities = identities
        self.emit = emit
        self.permissions = Permissions(base_dir / SETTINGS_FILE)
        self.core = GxsTunnelCore(identities.private_key, identities.public_key,
                                  own_ids=identities.own_ids)
        self.driver = CoreDriver(self.core, reactor, self._output)
        self.endpoint = TurtleEndpoint(self.core, self.driver.feed)
        turtle.router.register_service(self.endpoint)
        self.chat = DistantChat(self.core, permission=self.permissions.chat,
                                is_contact=is_contact)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.driver.service()

    def stop(self) -> None:
        self.driver.stop()

    def receive(self, peer: PeerIdentity, item: object) -> None:
        """Nothing travels on a link under 0x0028: such an item is ignored."""

    # --- API ------------------------------------------------------------------------------

    def own_identity(self, identity: str | None) -> GxsId:
        """Our identity ``identity`` (hex), or our first one."""
        own = self.identities.own_ids()
        if identity is None:
            if not own:
                raise ValueError("no identity yet: create one (rsnode id create NAME)")
            return own[0]  # type: ignore[no-any-return]
        gid = GxsId.from_hex(identity.lstrip("@"))
        if gid not in own:
            raise ValueError(f"{gid.to_hex()} is not one of our identities")
        return gid

    def open_chat(self, to_id: GxsId, from_id: GxsId) -> GxsId:
        """Open (or find) the distant chat with ``to_id``; its id."""
        return self.driver.feed(self.chat.initiate, to_id, from_id)  # type: ignore[no-any-return]

    def send_chat(self, chat_id: GxsId, text: str) -> DistantChatMessage:
        return self.driver.feed(self.chat.send, chat_id, text)  # type: ignore[no-any-return]

    def typing(self, chat_id: GxsId) -> None:
        self.driver.feed(self.chat.typing, chat_id)

    def close_chat(self, chat_id: GxsId) -> bool:
        return bool(self.driver.feed(self.chat.close, chat_id))

    def chat_status(self, chat_id: GxsId) -> TunnelStatus:
        return self.chat.status(chat_id)

    def set_permissions(self, chat: DistantChatPermission | None = None,
                        mail: DistantChatPermission | None = None) -> None:
        """Change who may reach us (kept across restarts); open chats stay open."""
        if chat is not None:
            self.permissions.chat = self.chat.permission = chat
        if mail is not None:
            self.permissions.mail = mail
        self.permissions.save()

    def status_section(self) -> dict[str, Any]:
        return {"tunnels": len(self.core.tunnels), "permissions": self.permissions.to_json(),
                "dropped": dict(self.core.dropped)}

    # --- outputs --------------------------------------------------------------------------

    def _output(self, out: Any) -> None:
        turtle = self.turtle
        if isinstance(out, TurtleSend):
            turtle.send_tunnel_item(out.virtual_peer, out.item)
        elif isinstance(out, MonitorTunnels):
            turtle.driver.feed(turtle.router.monitor_tunnels, out.file_hash, self.endpoint)
        elif isinstance(out, StopMonitoring):
            turtle.driver.feed(turtle.router.stop_monitoring, out.file_hash)
        else:
            self.chat.handle(out, self.reactor.seconds())
            self.driver.service()  # the chat may have fed the core
            for event in self.chat.drain():
                self.emit(event)


# --- control commands --------------------------------------------------------------------


def _distant(node: Any) -> GxsTunnelService:
    part = getattr(node, "distant", None)
    if part is None:
        raise ValueError("this node runs no distant chat (it needs turtle routing)")
    return part  # type: ignore[no-any-return]


def _gxs_id(text: object) -> GxsId:
    try:
        return GxsId.from_hex(str(text).lstrip("@"))
    except ValueError as e:
        raise ValueError(f"{text!r} is not an identity id (32 hex digits)") from e


def _message_json(m: DistantChatMessage) -> dict[str, Any]:
    return {"seq": m.seq, "chat": m.chat_id.to_hex(), "peer": m.peer_id.to_hex(),
            "text": m.text, "send_time": m.send_time, "incoming": m.incoming}


@COMMANDS.command("distant_chat_send")
def _chat_send(node: Any, args: dict[str, Any]) -> Any:
    part = _distant(node)
    own = part.own_identity(args.get("identity"))
    chat_id = part.open_chat(_gxs_id(args["to"]), own)
    message = part.send_chat(chat_id, str(args["text"]))
    return {"chat": chat_id.to_hex(), "status": part.chat_status(chat_id).name.lower(),
            "seq": message.seq}


@COMMANDS.command("distant_chat_open")
def _chat_open(node: Any, args: dict[str, Any]) -> Any:
    part = _distant(node)
    chat_id = part.open_chat(_gxs_id(args["to"]), part.own_identity(args.get("identity")))
    return {"chat": chat_id.to_hex(), "status": part.chat_status(chat_id).name.lower()}


@COMMANDS.command("distant_chat_close")
def _chat_close(node: Any, args: dict[str, Any]) -> Any:
    return _distant(node).close_chat(_gxs_id(args["chat"]))


@COMMANDS.command("distant_chat_list")
def _chat_list(node: Any, args: dict[str, Any]) -> Any:
    part = _distant(node)
    return [{"chat": tid.to_hex(), "own": t.own_id.to_hex(), "peer": t.peer_id.to_hex(),
             "status": t.status.name.lower(), "pending": len(t.pending)}
            for tid, t in part.core.tunnels.items()]


@COMMANDS.command("distant_chat_history")
def _chat_history(node: Any, args: dict[str, Any]) -> Any:
    part = _distant(node)
    history = list(part.chat.history)
    last = history[-1].seq if history else 0
    after = int(args.get("after", last))
    return {"last": last, "messages": [_message_json(m) for m in history if m.seq > after]}


@COMMANDS.command("distant_permissions")
def _permissions(node: Any, args: dict[str, Any]) -> Any:
    part = _distant(node)
    names = {p.name.lower(): p for p in DistantChatPermission}
    changes = {}
    for key in ("chat", "mail"):
        if args.get(key) is not None:
            if str(args[key]) not in names:
                raise ValueError(f"{key} permission must be one of {', '.join(names)}")
            changes[key] = names[str(args[key])]
    if changes:
        part.set_permissions(**changes)
    return part.permissions.to_json()
