"""The errors of file transfer, apart so that the service and its control commands share
them without importing each other."""

from __future__ import annotations

__all__ = ["TransferError", "UnknownTransferError"]


class TransferError(Exception):
    """A download cannot be started as asked (bad hash or size, nothing to download from)."""


class UnknownTransferError(KeyError):
    """No download of that hash exists (it finished, was cancelled, or never started)."""
