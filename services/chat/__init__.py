"""chat: private and broadcast chat (service 0x0012), with history and an offline queue, and
chat lobbies (the same service's lobby items: `services.chat.lobby`)."""

from services.chat.lobby import LobbyCore, LobbyMessage, LobbyPeerEvent
from services.chat.lobby_service import LobbyService
from services.chat.service import ChatMessage, ChatService, ChatStatus
from services.chat.store import ChatStore

__all__ = ["ChatMessage", "ChatService", "ChatStatus", "ChatStore", "LobbyCore", "LobbyMessage",
           "LobbyPeerEvent", "LobbyService"]
