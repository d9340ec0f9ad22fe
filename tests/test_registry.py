"""The registry and the specs: each service declared once and consistently, and the Node and
``rsnode`` built from them."""

from __future__ import annotations

import dataclasses

import pytest

from pqi.items.chat import ChatMsgItem
from pqi.items.heartbeat import HeartbeatItem
from services.base import Service
from services.cli.rsnode import SERVICE_COMMANDS, build_parser
from services.registry import NODE_SERVICES, cli_registrars, event_types, node_options
from services.sharing.filelists import FileListsService
from services.spec import Commands, RegistryError, ServiceSpec
from tests.service_fakes import make_node, on_fresh_reactor


def test_specs_are_consistent() -> None:
    """Ids, node attributes and command names are unique; every declared item belongs to its
    service; every event is declared once; every service says how a node builds it."""
    assert len({s.service_id for s in NODE_SERVICES}) == len(NODE_SERVICES)
    assert len({s.attribute for s in NODE_SERVICES}) == len(NODE_SERVICES)
    commands = [name for s in NODE_SERVICES for name in s.commands]
    assert len(commands) == len(set(commands))
    for spec in NODE_SERVICES:
        assert spec.items and spec.build is not None and spec.attribute
        assert all(item.SERVICE == spec.service_id for item in spec.items)
    assert len(event_types(NODE_SERVICES)) == len(set(event_types(NODE_SERVICES)))


def test_a_service_class_takes_its_identity_from_its_spec() -> None:
    """The class attribute ``service_id`` comes from the spec (no second declaration)."""
    (sharing,) = [s for s in NODE_SERVICES if s.attribute == "sharing"]
    assert FileListsService.service_id == FileListsService.spec.service_id == sharing.service_id


def test_spec_refuses_foreign_items_and_mutable_events() -> None:
    """A spec listing another service's item, or an event that is not a frozen dataclass, is
    a RegistryError when it is declared."""
    @dataclasses.dataclass
    class Mutable:
        x: int

    with pytest.raises(RegistryError, match="ChatMsgItem"):
        ServiceSpec(HeartbeatItem.SERVICE, "heartbeat", items=(HeartbeatItem, ChatMsgItem))
    with pytest.raises(RegistryError, match="Mutable"):
        ServiceSpec(0x7E58, "x", events=(Mutable,))


def test_command_defined_twice_refused() -> None:
    """A Commands table refuses a second function under one name."""
    table = Commands()
    table.command("x")(lambda node, args: 1)
    with pytest.raises(RegistryError):
        table.command("x")(lambda node, args: 2)


def test_options_defaults_overrides_and_unknown_names() -> None:
    """Node options are the services' defaults, overridden by what is given; a name no
    service takes is a TypeError, like any unexpected keyword argument."""
    options = node_options(NODE_SERVICES, {"rtt_period": 0.5})
    assert options["rtt_period"] == 0.5 and options["heartbeat_period"] == 5.0
    with pytest.raises(TypeError, match="rtt_periode"):
        node_options(NODE_SERVICES, {"rtt_periode": 0.5})


@pytest.mark.integration
def test_node_built_from_the_registry(tmp_path) -> None:
    """The node reaches each built service under its spec's attribute, serves the commands
    of the services it runs (none of file sharing when that is off), and refuses a spec whose
    attribute would hide a node method or whose command is already taken."""
    clash = ServiceSpec(0x7E59, "friends", attribute="friends",
                        build=lambda node: object())
    duplicate = Commands()
    duplicate.command("status")(lambda node, args: None)

    class Again(Service):
        spec = ServiceSpec(0x7E5A, "again", attribute="again", commands=duplicate,
                           build=lambda node: Again(node.control, node.reactor))

    def close(node) -> None:
        node.friends_list.close()
        for spec, part in node.parts.values():
            if spec.close is not None and part is not None:
                spec.close(part)

    async def body(reactor):
        full = make_node(reactor, tmp_path, "alice")
        bare = make_node(reactor, tmp_path / "b", "bob", file_sharing=None)
        parts = {name: part for name, (_, part) in full.parts.items()}
        result = (parts, set(full.commands()), set(bare.commands()), bare.sharing)
        close(full)
        close(bare)
        errors = []
        with pytest.raises(RegistryError) as clashed:  # refused before anything is built
            make_node(reactor, tmp_path / "c", "carol", services=(clash, *NODE_SERVICES))
        errors.append(str(clashed.value))
        again = make_node(reactor, tmp_path / "d", "dave", services=(*NODE_SERVICES, Again.spec))
        try:
            with pytest.raises(RegistryError) as taken:
                again.commands()
            errors.append(str(taken.value))
        finally:
            close(again)
        return result, errors

    (parts, full_commands, bare_commands, bare_sharing), errors = on_fresh_reactor(body)
    assert set(parts) == {s.attribute for s in NODE_SERVICES}
    assert parts["chat"].service_id == 0x0012 and parts["transfers"].service_id == 0x0017
    assert {"status", "set_status", "chat_send", "mail_list", "files_get",
            "files_share"} <= full_commands
    assert "files_share" not in bare_commands and "files_get" in bare_commands
    assert bare_sharing is None
    assert "'friends' is taken" in errors[0] and "'status'" in errors[1]


def test_rsnode_lists_the_specs_subcommands() -> None:
    """``rsnode``'s own list of the services' subcommands (so that it starts without
    importing the services) is exactly what the registered specs declare, in order."""
    declared = [f"{r.__module__}:{r.__name__}" for r in cli_registrars(NODE_SERVICES)]
    assert list(SERVICE_COMMANDS) == declared


def test_rsnode_subcommands_come_from_the_registry() -> None:
    """``rsnode``'s service subcommands (chat, mail, files ...) are those the specs add."""
    parser = build_parser()
    assert parser.parse_args(["chat", "bob", "hi"]).command == "chat"
    assert parser.parse_args(["mail", "list"]).mail_command == "list"
    assert parser.parse_args(["files", "shares"]).files_command == "shares"
    assert parser.parse_args(["files", "get", "ab" * 20, "--size", "1"]).files_command == "get"
