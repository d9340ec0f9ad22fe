# -*- test-case-name: tests.test_sharing_nodes -*-
"""`FileSharing`: shared folders, hashing, the index, friends' lists and search, as one part
of a node.

It is a Twisted service (a child of the `Node`): starting it starts the hashing thread pool
and the periodic rescan; stopping it stops both and closes the hash cache.  The file-list
network service it holds (`FileListsService`) is registered with the node's service control
like every other service.  `COMMANDS` are the control-channel entries ``rsnode files``
uses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from twisted.application.service import Service as TwistedService
from twisted.internet import defer, task
from twisted.python.threadpool import ThreadPool

from pqi.interfaces import IItemSender
from pqi.wire.fields import Sha1Hash, SslId
from services.spec import Commands

from . import filelists
from .filelists import RESYNC_PERIOD, SWEEP_PERIOD, FileListsService
from .hashing import HASH_CACHE_FILE, HashCache, Hasher
from .index import RESCAN_PERIOD, SALT_FILE, SETTLE_TIME, SharedIndex, load_salt
from .remote import UnknownPathError
from .remote_store import FRIEND_LISTS_FILE, RemoteTreeStore
from .search import Query, SearchResult, search
from .shares import SHARES_FILE, SharedFolder, ShareList, Visibility

__all__ = ["FileSharing", "SharingOptions", "UnknownFriendListError", "FileListUpdated",
           "SharesIndexed", "SPEC"]


class UnknownFriendListError(KeyError):
    """We hold no file list of that friend (not a friend, or never connected)."""


@dataclasses.dataclass(frozen=True)
class SharingOptions:
    """Timings of file sharing (defaults follow RetroShare where it has them)."""

    settle: float = SETTLE_TIME
    rescan_period: float = RESCAN_PERIOD
    resync_period: float = RESYNC_PERIOD
    sweep_period: float = SWEEP_PERIOD
    hash_threads: int = 2
    #: Seconds between saves of friends' changed file lists (also saved when stopping).
    save_period: float = 60.0


@dataclasses.dataclass(frozen=True)
class FileListUpdated:
    """A friend's synced file list changed (``node.sharing.browse`` shows the new one)."""

    #: The friend location.
    ssl_id: SslId


@dataclasses.dataclass(frozen=True)
class SharesIndexed:
    """Our shared folders were rescanned and what friends see changed."""


#: Control commands of file sharing (``rsnode files share/browse/search/...``).
COMMANDS = Commands()


def _build(node: Any) -> FileSharing | None:
    """File sharing on a node (none when its ``file_sharing`` option is None); downloads
    also serve from its index."""
    options = node.options["file_sharing"]
    if options is None:
        return None
    sharing = FileSharing(node.reactor, node.account.base_dir, node.control, options,
                          on_tree_changed=lambda s: node.emit(FileListUpdated(s)),
                          on_index_changed=lambda: node.emit(SharesIndexed()))
    node.transfers.add_index(sharing.index)
    return sharing


#: File sharing on a node: the file-lists service inside a `FileSharing` part.
SPEC: Final = dataclasses.replace(
    filelists.SPEC, attribute="sharing", events=(FileListUpdated, SharesIndexed),
    commands=COMMANDS, cli="services.cli.files:register",
    options={"file_sharing": SharingOptions()}, build=_build,
    network=lambda sharing: sharing.lists)


class FileSharing(TwistedService):
    """The file-sharing part of a node whose account directory is ``base_dir``."""

    def __init__(self, reactor: Any, base_dir: str | os.PathLike[str], sender: IItemSender,
                 options: SharingOptions = SharingOptions(), *,
                 on_tree_changed: Callable[[SslId], None] | None = None,
                 on_index_changed: Callable[[], None] | None = None) -> None:
        base = Path(base_dir)
        self.reactor = reactor
        self.options = options
        self.pool = ThreadPool(0, max(1, options.hash_threads), name="rsproto-hashing")
        self.cache = HashCache(base / HASH_CACHE_FILE, reactor.seconds)
        self.hasher = Hasher(reactor, self.pool, self.cache, parallel=options.hash_threads)
        self.shares = ShareList(base / SHARES_FILE)
        self.index = SharedIndex(reactor, self.shares, self.hasher, self.pool,
                                 load_salt(base / SALT_FILE), settle=options.settle,
                                 period=options.rescan_period, on_changed=on_index_changed)
        self._on_tree_changed = on_tree_changed
        self.lists = FileListsService(sender, reactor, self.index,
                                      resync_period=options.resync_period,
                                      sweep_period=options.sweep_period,
                                      on_tree_changed=self._tree_changed)
        self.store = RemoteTreeStore(base / FRIEND_LISTS_FILE)
        self.lists.trees.update(self.store.load())
        self._dirty: set[SslId] = set()
        self._saver: task.LoopingCall | None = None

    def _tree_changed(self, ssl_id: SslId) -> None:
        self._dirty.add(ssl_id)
        if self._on_tree_changed is not None:
            self._on_tree_changed(ssl_id)

    def save_lists(self) -> int:
        """Save the friends' lists that changed since the last save; returns how many."""
        dirty, self._dirty = self._dirty, set()
        for ssl_id in dirty:
            tree = self.lists.trees.get(ssl_id)
            if tree is not None:
                self.store.save(tree)
        return len(dirty)

    # --- lifecycle ------------------------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self.pool.start()
        self.index.start()
        self._saver = task.LoopingCall(self.save_lists)
        self._saver.clock = self.reactor
        self._saver.start(self.options.save_period, now=False)

    def stopService(self) -> None:  # noqa: N802
        super().stopService()
        self.index.stop()
        if self._saver is not None and self._saver.running:
            self._saver.stop()
        self.save_lists()
        self.store.close()
        self.hasher.closed = True
        self.pool.stop()
        self.cache.close()

    # --- API ------------------------------------------------------------------------------------

    def share(self, path: str | os.PathLike[str], name: str | None = None,
              visibility: Visibility = Visibility.ALL,
              friends: Iterable[SslId] = (),
              anonymous: bool = False) -> defer.Deferred[SharedFolder]:
        """Share a folder; fires with it once it is indexed (files hashed: `index.progress`
        shows how far).  Friends see it at their next sync request (`RESYNC_PERIOD`)."""
        folder = self.shares.add(path, name, visibility, friends, anonymous)
        return self.index.scan().addCallback(lambda _: folder)

    def unshare(self, name: str) -> defer.Deferred[bool]:
        self.shares.remove(name)
        return self.index.scan()

    def set_visibility(self, name: str, visibility: Visibility,
                       friends: Iterable[SslId] = (),
                       anonymous: bool | None = None) -> defer.Deferred[SharedFolder]:
        """Change who sees a folder; fires once the index reflects it (friends notice at
        their next re-sync)."""
        folder = self.shares.set_visibility(name, visibility, friends, anonymous)
        return self.index.scan().addCallback(lambda _: folder)

    def browse(self, ssl_id: SslId, path: str = "", depth: int = 64) -> dict[str, object]:
        """Friend ``ssl_id``'s tree below ``path``, as JSON data."""
        tree = self.lists.trees.get(ssl_id)
        if tree is None:
            raise UnknownFriendListError(f"no file list of {ssl_id.to_hex()} yet")
        banned = self.lists.banned_files
        return tree.to_json(tree.find(path), depth,
                            None if banned is None else banned.is_banned)

    def search(self, words: Iterable[str] = (), min_size: int | None = None,
               max_size: int | None = None, file_hash: Sha1Hash | None = None,
               friends: Iterable[SslId] | None = None) -> list[SearchResult]:
        """Files in friends' lists matching every criterion given."""
        query = Query(tuple(words), min_size, max_size, file_hash)
        wanted = None if friends is None else set(friends)
        trees = [t for s, t in self.lists.trees.items() if wanted is None or s in wanted]
        banned = self.lists.banned_files
        return [r for r in search(trees, query) if banned is None or not banned.is_banned(r.hash)]


def _with_size(node: Any, folder: SharedFolder) -> dict[str, Any]:
    return {**folder.to_json(), "files": node.sharing.index.share_size(folder.name)}


@COMMANDS.command("files_share")
def _share(node: Any, args: dict[str, Any]) -> defer.Deferred[dict[str, Any]] | dict[str, Any]:
    """Share a folder; with ``wait`` (the default) answer once it is indexed, else at once
    while hashing goes on (`files_hashing` follows it)."""
    visibility = Visibility(args.get("visibility", "all"))
    friends = [node.friend_location(f) for f in args.get("friends", [])]
    anonymous = bool(args.get("anonymous", False))
    if args.get("wait", True):
        d = node.sharing.share(str(args["path"]), args.get("name"), visibility, friends,
                               anonymous)
        return d.addCallback(lambda f: _with_size(node, f))
    folder = node.sharing.shares.add(str(args["path"]), args.get("name"), visibility, friends,
                                     anonymous)
    node.sharing.index.scan().addErrback(
        lambda f: node.sharing.index.log.failure("scanning the shares failed", f))
    return _with_size(node, folder)


@COMMANDS.command("files_visibility")
def _visibility(node: Any, args: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    anonymous = args.get("anonymous")
    d = node.sharing.set_visibility(str(args["name"]), Visibility(args["visibility"]),
                                    [node.friend_location(f) for f in args.get("friends", [])],
                                    None if anonymous is None else bool(anonymous))
    return d.addCallback(lambda f: _with_size(node, f))


@COMMANDS.command("files_unshare")
def _unshare(node: Any, args: dict[str, Any]) -> defer.Deferred[None]:
    return node.sharing.unshare(str(args["name"])).addCallback(lambda _: None)


@COMMANDS.command("files_shares")
def _shares(node: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [_with_size(node, f) for f in node.sharing.shares.folders()]


@COMMANDS.command("files_browse")
def _browse(node: Any, args: dict[str, Any]) -> dict[str, object]:
    try:
        return node.sharing.browse(node.friend_location(str(args["friend"])),
                                   str(args.get("path", "")), int(args.get("depth", 64)))
    except UnknownPathError as e:
        raise UnknownPathError(f"no folder {e.args[0]!r} in that friend's list") from None


@COMMANDS.command("files_search")
def _search(node: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    h = args.get("hash")
    return [r.to_json() for r in node.sharing.search(
        args.get("words", []), args.get("min_size"), args.get("max_size"),
        Sha1Hash.from_hex(h) if h else None)]


@COMMANDS.command("files_hashing")
def _hashing(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    """How far hashing the shares got (``rsnode files shares`` and ``files share``)."""
    return {**node.sharing.index.progress.to_json(), "scanning": node.sharing.index.scanning}
