"""mail: mail between friends (service 0x0013), with a crash-safe outbox and an inbox; between
two rsproto nodes, receipts (our service 0x7E01) say when a recipient committed a mail."""

from services.mail.receipt import MailReceipts
from services.mail.service import Draft, Mail, MailService
from services.mail.store import MailStore

__all__ = ["Draft", "Mail", "MailReceipts", "MailService", "MailStore"]
