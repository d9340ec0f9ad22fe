"""chat: private and broadcast chat (service 0x0012), with history and an offline queue."""

from services.chat.service import ChatMessage, ChatService, ChatStatus
from services.chat.store import ChatStore

__all__ = ["ChatMessage", "ChatService", "ChatStatus", "ChatStore"]
