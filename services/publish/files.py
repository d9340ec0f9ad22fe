# -*- test-case-name: tests.test_publish_service -*-
"""The files of channel posts: served to subscribers, fetched by them (``p3GxsChannels``).

The publisher's side: a file attached to a post is hashed, served by hash to friends (the
transfer service's extra list) and through turtle tunnels to anyone who digs for it (a
channel's subscribers are mostly not our friends), and remembered in the channel store so
it is served again after a restart.

The subscriber's side: a channel has an auto-download setting (off unless the user turns it
on, as ``SSGxsChannelGroup``'s default; the node option ``channel_auto_download`` changes
that default).  When a post of an auto-downloaded channel arrives, younger than
`DOWNLOAD_PERIOD`, each of its files under `MAX_AUTO_DOWNLOAD` bytes is fetched, through
tunnels when the node routes turtle (RetroShare asks ``RS_FILE_REQ_ANONYMOUS_ROUTING``),
else from friends.  `ChannelFiles.download` fetches a post's files on request.  A finished
download joins the transfer service's extra list, so a subscriber serves it in turn.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

from twisted.logger import Logger

from pqi.items.gxs_content import ChannelPost
from pqi.wire.fields import GxsId, GxsMessageId, Sha1Hash
from pqi.wire.tlvvalues import FileItem
from services.publish.events import ChannelFileWanted
from services.transfer.errors import TransferError

__all__ = ["ChannelFiles", "DOWNLOAD_PERIOD", "MAX_AUTO_DOWNLOAD", "AUTO_DOWNLOAD"]

#: Posts older than this are not auto-downloaded (``CHANNEL_DOWNLOAD_PERIOD``, a week).
DOWNLOAD_PERIOD: Final = 7 * 24 * 3600
#: Largest file auto-downloaded (``CHANNEL_MAX_AUTO_DL``, 8 GiB).
MAX_AUTO_DOWNLOAD: Final = 8 * 1024 ** 3
#: The per-channel setting's name in the channel store.
AUTO_DOWNLOAD: Final = "auto_download"


class ChannelFiles:
    """Serving and fetching the files of one node's channels.

    ``transfers``: the file transfer service (``share_file``, ``extra``, ``download``);
    ``turtle``: the turtle service or None (``download_anonymous``, ``files.serve_also``).
    """

    log = Logger()

    def __init__(self, channels: Any, transfers: Any, turtle: Any = None,
                 auto_download_default: bool = False,
                 emit: Callable[[object], object] = lambda e: None) -> None:
        self.channels = channels
        self.transfers = transfers
        self.turtle = turtle
        self.auto_download_default = auto_download_default
        self.emit = emit
        self._version = 0
        for file_hash, path, size in channels.local.shared_files():
            transfers.extra.add(file_hash, path, size)
        if turtle is not None and turtle.files is not None:
            turtle.files.serve_also(channels.local.shared_files, lambda: self._version)

    def attach(self, grp_id: GxsId, path: str | os.PathLike[str]) -> FileItem:
        """Hash and serve a file for a post of our channel ``grp_id``; its reference."""
        item: FileItem = self.transfers.share_file(path)
        self.channels.local.add_shared_file(item.hash, os.path.realpath(path), item.size,
                                            grp_id)
        self._version += 1
        return item

    def auto_download(self, grp_id: GxsId) -> bool:
        return bool(self.channels.local.setting(grp_id, AUTO_DOWNLOAD,
                                                int(self.auto_download_default)))

    def set_auto_download(self, grp_id: GxsId, enabled: bool) -> None:
        if self.channels.group(grp_id) is None:
            raise KeyError(f"no channel {grp_id}")
        self.channels.local.set_setting(grp_id, AUTO_DOWNLOAD, int(enabled))

    def post_arrived(self, grp_id: GxsId, msg_id: GxsMessageId, now: float) -> None:
        """A friend's post is stored: fetch its files if the channel says so."""
        info = self.channels.message(msg_id)
        if info is None or not isinstance(info.content, ChannelPost):
            return
        if not self.auto_download(grp_id) or now - info.publish_ts >= DOWNLOAD_PERIOD:
            return
        self.download(grp_id, msg_id, max_size=MAX_AUTO_DOWNLOAD)

    def download(self, grp_id: GxsId, msg_id: GxsMessageId,
                 max_size: int | None = None) -> list[FileItem]:
        """Fetch the files of a post (those under ``max_size``); the ones started."""
        info = self.channels.message(msg_id)
        if info is None or info.grp_id != grp_id or not isinstance(info.content, ChannelPost):
            raise KeyError(f"no post {msg_id} in channel {grp_id}")
        started = []
        for f in info.content.files.items:
            if f.size <= 0 or (max_size is not None and f.size >= max_size):
                continue
            if self._have(f.hash):
                continue
            try:
                if self.turtle is not None and self.turtle.files is not None:
                    self.turtle.download_anonymous(f.hash, f.size, f.name)
                else:
                    self.transfers.download(f.hash, f.size, f.name)
            except (TransferError, OverflowError, RuntimeError, OSError) as e:
                self.log.warn("channel file {name} not fetched: {e}", name=f.name, e=str(e))
                continue
            started.append(f)
            self.emit(ChannelFileWanted(grp_id, msg_id, f.name, f.size, f.hash.to_hex()))
        return started

    def _have(self, file_hash: Sha1Hash) -> bool:
        return (self.transfers.extra.lookup(file_hash) is not None
                or file_hash in self.transfers.downloads)
