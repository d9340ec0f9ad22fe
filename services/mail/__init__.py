"""mail: mail between friends (service 0x0013), with a crash-safe outbox and an inbox."""

from services.mail.service import Draft, Mail, MailService
from services.mail.store import MailStore

__all__ = ["Draft", "Mail", "MailService", "MailStore"]
