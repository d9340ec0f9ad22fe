"""Adding a service, exactly as docs/architecture.md ("How to add a service") says, shown on
a tiny example: notes, one short text a friend's node reports as an event.

Step 1 (the item module) and step 2 (the service module) are written here as they would be
in ``pqi/items/notes.py`` and ``services/notes.py``; step 3 hands the spec to the nodes
(``Node(services=(*NODE_SERVICES, SPEC))``, what one line in `services.registry` does for
``rsnode``).  Two real nodes on 127.0.0.1 then negotiate the service, one sends a note
through its control channel and the other emits the typed event.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from typing import Any, Final

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import threads

from pqi.interfaces import IItemSender, PeerIdentity
from pqi.items.serviceinfo import full_service_id
from pqi.wire import tlvtypes as tt
from pqi.wire.fields import SslId
from pqi.wire.item import PQItem, decode, encode
from pqi.wire.tlv import StringTLV
from services.base import Service
from services.events import ServicesNegotiated
from services.node.control_channel import call
from services.registry import NODE_SERVICES, cli_registrars
from services.spec import Commands, ServiceSpec
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = pytest.mark.timeout(120)

# --- step 1: the item module (pqi/items/notes.py) ---------------------------------------------

#: A service id neither RetroShare nor another test uses (importing this module registers
#: `NoteItem` for the whole test session).
SERVICE_NOTES: Final = 0x4E07


class NoteItem(PQItem):
    """One short text for a friend."""

    SERVICE = SERVICE_NOTES
    SUBTYPE = 0x01
    PRIORITY = 5
    BODY = c.Struct("text" / StringTLV(tt.STR_MSG))
    text: str


# --- step 2: the service module (services/notes.py) -------------------------------------------

@dataclasses.dataclass(frozen=True)
class NoteReceived:
    """A friend sent us a note."""

    #: The friend location.
    peer: SslId
    text: str


def _register_cli(subparsers: Any) -> None:
    """``rsnode note FRIEND TEXT``: through the running node's control channel."""
    p = subparsers.add_parser("note", help="send a friend a note")
    p.add_argument("friend")
    p.add_argument("text")
    p.add_argument("--base-dir", type=pathlib.Path, required=True)
    p.set_defaults(func=_note_cli)


def _note_cli(args: argparse.Namespace) -> int:
    sent = call(args.base_dir, "note_send", {"to": args.friend, "text": args.text})
    return 0 if sent else 1


#: Control commands of notes.
COMMANDS = Commands()

#: Notes on a node.
SPEC: Final = ServiceSpec(
    SERVICE_NOTES, "notes", attribute="notes", items=(NoteItem,), events=(NoteReceived,),
    commands=COMMANDS, cli=_register_cli,
    build=lambda node: NoteService(node.control, node.reactor, node.emit))


@COMMANDS.command("note_send")
def _note_send(node: Any, args: dict[str, Any]) -> bool:
    return bool(node.notes.send_note(node.friend_location(str(args["to"])), str(args["text"])))


class NoteService(Service):
    """Sends notes and reports the ones that arrive."""

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: Any, emit: Any) -> None:
        super().__init__(sender, reactor)
        self._emit = emit

    def send_note(self, peer: SslId, text: str) -> bool:
        return self.send(peer, NoteItem(text=text))

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, NoteItem):
            self._emit(NoteReceived(peer.ssl_id, item.text))


# --- step 3: the node runs it (services/registry.py, or Node(services=...)) --------------------

SERVICES: Final = (*NODE_SERVICES, SPEC)


@given(st.text(max_size=200))
def test_note_item_round_trip(text: str) -> None:
    """The example item survives encode/decode, as every codec must."""
    item = NoteItem(text=text)
    assert decode(encode(item)) == item


def parser_of(services: tuple[ServiceSpec, ...]) -> argparse.ArgumentParser:
    """A command line made as ``rsnode`` makes its own: from the specs' ``cli``."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for register in cli_registrars(services):
        register(sub)
    return parser


def test_cli_subcommand_comes_from_the_spec() -> None:
    """The command line gets ``note`` from the example's spec, beside the built-in ones,
    and only when the spec is listed."""
    args = parser_of(SERVICES).parse_args(["note", "bob", "hello", "--base-dir", "/x"])
    assert (args.command, args.friend, args.text) == ("note", "bob", "hello")
    assert parser_of(SERVICES).parse_args(["chat", "bob", "hi"]).command == "chat"
    with pytest.raises(SystemExit):
        parser_of(NODE_SERVICES).parse_args(["note", "bob", "hello", "--base-dir", "/x"])


@pytest.mark.integration
def test_two_nodes_negotiate_exchange_and_emit(tmp_path) -> None:
    """Alice and bob run the example service: they announce it and enable it with each
    other; ``note bob ...`` on alice's command line goes through her control channel
    (``note_send``) and reaches bob as a `NoteReceived` event."""
    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice", services=SERVICES, control=True)
        b = make_node(reactor, tmp_path, "bob", services=SERVICES)
        negotiated: dict[str, frozenset[int]] = {}
        a.subscribe(ServicesNegotiated, lambda e: negotiated.setdefault("a", e.services))
        b.subscribe(ServicesNegotiated, lambda e: negotiated.setdefault("b", e.services))
        await a.startService()
        await b.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: len(negotiated) == 2)
            note = b.next_event(NoteReceived, lambda e: e.peer == a.ssl_id)
            note.addTimeout(30, reactor)
            args = parser_of(SERVICES).parse_args(
                ["note", "bob", "hello from alice", "--base-dir", str(a.account.base_dir)])
            status = await threads.deferToThreadPool(reactor, reactor.getThreadPool(),
                                                     args.func, args)
            event = await note
            return negotiated, a.control.our_list(), status, event, a.ssl_id
        finally:
            await a.stopService()
            await b.stopService()

    negotiated, our_list, status, event, alice = on_fresh_reactor(body, 90)
    assert SERVICE_NOTES in negotiated["a"] and SERVICE_NOTES in negotiated["b"]
    assert our_list[full_service_id(SERVICE_NOTES)].name == "notes"
    assert status == 0
    assert event == NoteReceived(alice, "hello from alice")
