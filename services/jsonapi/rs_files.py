# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsFiles/*``: shared folders, browsing (own and friends' lists), downloads, uploads,
file and chunk details, and the transfer settings RetroShare's clients read and set.

Completed downloads stay listed by ``FileDownloads`` until ``FileClearCompleted``, like in
RetroShare (`CompletedDownloads`, bounded).  ``turtleSearch`` searches the friends' synced
file lists until rsproto has turtle routing, and reports results as RetroShare does, with a
FILE_TRANSFER NEW_DISTANT_SEARCH_RESULTS event carrying the returned request id.
"""

from __future__ import annotations

import collections
import os
import secrets
from pathlib import Path
from typing import Any, Final

from twisted.internet import defer

from pqi.wire.fields import Sha1Hash, SslId
from services.sharing.index import ROOT_HASH
from services.sharing.shares import ShareError, Visibility
from services.transfer.service import (
    TransferCompleted,
    TransferError,
    TransferInfo,
    UnknownTransferError,
)

from .api import ApiContext, EndpointTable
from .dir_handles import LOCAL_STORAGE, HandleTable
from .encoding import NULL_HASH, NULL_SSL_ID, Params, x64
from .events import SharedDirCode, file_transfer_event, shared_dir_event

__all__ = ["ENDPOINTS", "CompletedDownloads", "file_info", "dir_details",
           "MAX_COMPLETED", "MAX_SEARCH_RESULTS"]

ENDPOINTS = EndpointTable()

#: Completed downloads remembered for ``FileDownloads`` / ``FileDetails``.
MAX_COMPLETED: Final = 1024
#: Results one ``turtleSearch`` reports.
MAX_SEARCH_RESULTS: Final = 200
#: ``hintflags`` bits (RS_FILE_HINTS_*).
HINT_EXTRA: Final = 0x02
HINT_LOCAL: Final = 0x04
HINT_REMOTE: Final = 0x08
HINT_DOWNLOAD: Final = 0x10
HINT_UPLOAD: Final = 0x20
#: ``downloadStatus`` (FT_STATE_*).
FT_FAILED, FT_OKAY, FT_WAITING, FT_DOWNLOADING, FT_COMPLETE, FT_QUEUED, FT_PAUSED, \
    FT_CHECKING = range(8)
#: ``FileControl`` flags.
CTRL_PAUSE: Final = 0x100
CTRL_START: Final = 0x200
CTRL_FORCE_CHECK: Final = 0x400
#: Share flags: anonymous download, browsable, anonymous search.
FLAG_ANON_DL: Final = 0x80
FLAG_BROWSABLE: Final = 0x400
FLAG_ANON_SEARCH: Final = 0x800
SHARE_ALL: Final = FLAG_ANON_DL | FLAG_BROWSABLE | FLAG_ANON_SEARCH
#: ``DirDetails.type``.
DIR_ROOT: Final = 1
DIR_PERSON: Final = 2
DIR_DIR: Final = 4
DIR_FILE: Final = 8
#: ``transfer_info_flags`` of a download (RS_FILE_REQ_ANONYMOUS_ROUTING).
REQ_ANONYMOUS: Final = 0x80
CHUNK_SIZE: Final = 1 << 20
_STRATEGIES: Final = {"streaming": 0, "random": 1, "progressive": 2}
_PHASE_STATUS: Final = {"downloading": FT_DOWNLOADING, "verifying": FT_CHECKING,
                        "checking": FT_CHECKING, "paused": FT_PAUSED,
                        "complete": FT_COMPLETE, "failed": FT_FAILED, "error": FT_FAILED}


class CompletedDownloads:
    """Finished downloads (hash → info), oldest dropped beyond `MAX_COMPLETED`."""

    def __init__(self, limit: int = MAX_COMPLETED) -> None:
        self.limit = limit
        self.items: collections.OrderedDict[str, TransferInfo] = collections.OrderedDict()

    def add(self, info: TransferInfo) -> None:
        self.items[info.file_hash.to_hex()] = info
        self.items.move_to_end(info.file_hash.to_hex())
        while len(self.items) > self.limit:
            self.items.popitem(last=False)


def _state(ctx: ApiContext) -> tuple[CompletedDownloads, HandleTable]:
    extras = ctx.extras
    if "completed" not in extras:
        extras["completed"] = CompletedDownloads()
        extras["handles"] = HandleTable()
    return extras["completed"], extras["handles"]


def attach(ctx: ApiContext) -> None:
    """Start remembering completed downloads (called once the node is known)."""
    completed, _ = _state(ctx)
    if ctx.node is not None and getattr(ctx.node, "transfers", None) is not None:
        ctx.node.subscribe(TransferCompleted, lambda event: completed.add(event.info))


# --- records -----------------------------------------------------------------------------------

def file_info(**values: Any) -> dict[str, Any]:
    """A ``FileInfo`` record (RetroShare's member order; unknown-file defaults)."""
    record: dict[str, Any] = {
        "storage_permission_flags": 0, "transfer_info_flags": 0, "mId": 0, "searchId": 0,
        "path": "", "fname": "", "hash": NULL_HASH, "ext": "", "size": x64(0),
        "avail": x64(0), "rank": 0.0, "age": 0, "queue_position": 0,
        "transfered": x64(0), "tfRate": 0.0, "downloadStatus": 0, "peers": [],
        "priority": 1, "lastTS": x64(0), "parent_groups": []}
    for key, value in values.items():
        if key not in record:
            raise KeyError(key)
        record[key] = value
    return record


def dir_details(**values: Any) -> dict[str, Any]:
    """A ``DirDetails`` record (member order as RetroShare writes it)."""
    record: dict[str, Any] = {
        "handle": x64(0), "parentHandle": x64(0), "prow": -1, "type": 0,
        "id": NULL_SSL_ID, "name": "", "hash": NULL_HASH, "path": "", "size": x64(0),
        "mtime": 0, "flags": 0, "max_mtime": 0, "children": [], "parent_groups": []}
    for key, value in values.items():
        if key not in record:
            raise KeyError(key)
        record[key] = value
    return record


def _download_info(ctx: ApiContext, info: TransferInfo) -> dict[str, Any]:
    status = _PHASE_STATUS.get(info.state, FT_DOWNLOADING)
    if status == FT_DOWNLOADING and info.sources == 0 and info.done == 0:
        status = FT_WAITING
    path = info.path or str(Path(ctx.node.transfers.partials_dir) / info.file_hash.to_hex())
    return file_info(
        transfer_info_flags=REQ_ANONYMOUS, path=path, fname=info.name,
        hash=info.file_hash.to_hex(), size=x64(info.size), avail=x64(info.done),
        transfered=x64(info.done), tfRate=float(info.rate) / 1024,
        downloadStatus=status, priority=info.priority)


def _downloads(ctx: ApiContext) -> dict[str, TransferInfo]:
    completed, _ = _state(ctx)
    out = dict(completed.items)
    for info in ctx.node.transfers.transfers():
        out[info.file_hash.to_hex()] = info
    return out


def _local_file(ctx: ApiContext, file_hash: str) -> Any | None:
    sharing = ctx.node.sharing
    if sharing is None:
        return None
    for f in sharing.index.files():
        if f.hash.to_hex() == file_hash:
            return f
    return None


def _share_flags(folder: Any) -> int:
    return SHARE_ALL if folder.visibility is Visibility.ALL else (
        FLAG_BROWSABLE if folder.visibility is Visibility.FRIENDS else 0)


def _share_of(ctx: ApiContext, path: str) -> Any | None:
    sharing = ctx.node.sharing
    if sharing is None:
        return None
    real = os.path.realpath(path) if path else ""
    for folder in sharing.shares.folders():
        if folder.path in (path, real):
            return folder
    return None


# --- shared folders ----------------------------------------------------------------------------

@ENDPOINTS.add("/rsFiles/getSharedDirectories")
def get_shared_directories(ctx: ApiContext, p: Params) -> dict[str, Any]:
    sharing = ctx.node.sharing
    folders = sharing.shares.folders() if sharing is not None else []
    return {"dirs": [{"filename": f.path, "virtualname": f.name,
                      "shareflags": _share_flags(f), "parent_groups": []} for f in folders],
            "retval": sharing is not None}


def _hashing_events(ctx: ApiContext, scan: defer.Deferred[Any]) -> None:
    now = ctx.now()
    ctx.publish(shared_dir_event(now, SharedDirCode.SHARED_DIRS_LIST_CHANGED))
    ctx.publish(shared_dir_event(now, SharedDirCode.HASHING_PROCESS_STARTED))
    scan.addBoth(lambda r: (ctx.publish(shared_dir_event(
        ctx.now(), SharedDirCode.HASHING_PROCESS_FINISHED)), r)[1])
    scan.addErrback(lambda f: None)


def _add_share(ctx: ApiContext, d: Params) -> bool:
    sharing = ctx.node.sharing
    path = d.str("filename")
    if sharing is None or not path:
        return False
    flags = d.int("shareflags", SHARE_ALL)
    visibility = Visibility.ALL if flags & FLAG_BROWSABLE else Visibility.NONE
    try:
        sharing.shares.add(path, d.str("virtualname") or None, visibility)
    except (ShareError, OSError, ValueError):
        return False
    return True


@ENDPOINTS.add("/rsFiles/addSharedDirectory")
def add_shared_directory(ctx: ApiContext, p: Params) -> dict[str, Any]:
    if not _add_share(ctx, p.sub("dir")):
        return {"retval": False}
    _hashing_events(ctx, ctx.node.sharing.index.scan())
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/setSharedDirectories")
def set_shared_directories(ctx: ApiContext, p: Params) -> dict[str, Any]:
    sharing = ctx.node.sharing
    if sharing is None:
        return {"retval": False}
    wanted = p.list("dirs", lambda e: Params(e) if isinstance(e, dict) else None)
    paths = {w.str("filename") for w in wanted}
    for folder in sharing.shares.folders():
        if folder.path not in paths:
            sharing.shares.remove(folder.name)
    for w in wanted:
        if _share_of(ctx, w.str("filename")) is None:
            _add_share(ctx, w)
    _hashing_events(ctx, sharing.index.scan())
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/removeSharedDirectory")
def remove_shared_directory(ctx: ApiContext, p: Params) -> dict[str, Any]:
    folder = _share_of(ctx, p.str("dir"))
    if folder is None:
        return {"retval": False}
    ctx.node.sharing.shares.remove(folder.name)
    _hashing_events(ctx, ctx.node.sharing.index.scan())
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/updateShareFlags")
def update_share_flags(ctx: ApiContext, p: Params) -> dict[str, Any]:
    d = p.sub("dir")
    folder = _share_of(ctx, d.str("filename"))
    if folder is None:
        return {"retval": False}
    visibility = Visibility.ALL if d.int("shareflags") & FLAG_BROWSABLE else Visibility.NONE
    ctx.node.sharing.set_visibility(folder.name, visibility).addErrback(lambda f: None)
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/ForceDirectoryCheck")
def force_directory_check(ctx: ApiContext, p: Params) -> dict[str, Any]:
    if ctx.node.sharing is not None:
        _hashing_events(ctx, ctx.node.sharing.index.scan())
    return {}


# --- browsing ----------------------------------------------------------------------------------

def _child(kind: int, name: str, handle: int) -> dict[str, Any]:
    return {"type": kind, "name": name, "handle": x64(handle)}


def _root(ctx: ApiContext, flags: int, handles: HandleTable) -> dict[str, Any]:
    children = []
    if flags & HINT_REMOTE:
        sharing = ctx.node.sharing
        trees = sharing.lists.trees if sharing is not None else {}
        for ssl_id in sorted(trees, key=lambda s: s.to_hex()):
            storage = handles.storage(ssl_id.to_hex())
            children.append(_child(DIR_PERSON, ssl_id.to_hex(), handles.handle(storage, None)))
    else:
        own = ctx.node.ssl_id.to_hex()
        children.append(_child(DIR_PERSON, own, handles.handle(LOCAL_STORAGE, None)))
    return dir_details(type=DIR_ROOT, name="root", children=children)


def _local(ctx: ApiContext, handle: int, key: Any, handles: HandleTable) -> dict[str, Any]:
    """Our own shares: the node entry lists the shared folders by their full path."""
    index = ctx.node.sharing.index
    own = ctx.node.ssl_id.to_hex()
    if key is None:
        root = index.directory(ROOT_HASH)
        subs = [index.directory(h) for h in root.subdirs] if root else []
        children = [_child(DIR_DIR, d.path, handles.handle(LOCAL_STORAGE, ("d", d.hash)))
                    for d in subs if d is not None]
        return dir_details(handle=x64(handle), prow=0, type=DIR_PERSON, id=own, name=own,
                           size=x64(sum(f.size for f in index.files())),
                           max_mtime=root.recurs_modif_ts if root else 0, children=children)
    d = index.directory(key[1])
    if d is None:
        raise LookupError("gone")
    top = d.parent is None or d.parent == ROOT_HASH
    folder = ctx.node.sharing.shares.get(d.share) if d.share else None
    flags = _share_flags(folder) if folder is not None else 0
    if key[0] == "f":
        position = key[2]
        f = d.files[position]
        return dir_details(handle=x64(handle), parentHandle=x64(handles.handle(
            LOCAL_STORAGE, ("d", d.hash))), prow=position, type=DIR_FILE, id=own,
            name=f.name, hash=f.hash.to_hex(), path=d.path, size=x64(f.size),
            mtime=f.modif_ts, flags=flags, max_mtime=f.modif_ts)
    parent = handles.handle(LOCAL_STORAGE, None if top else ("d", d.parent))
    children = [_child(DIR_DIR, sub.name, handles.handle(LOCAL_STORAGE, ("d", sub.hash)))
                for sub in (index.directory(h) for h in d.subdirs) if sub is not None]
    children += [_child(DIR_FILE, f.name, handles.handle(LOCAL_STORAGE, ("f", d.hash, i)))
                 for i, f in enumerate(d.files)]
    return dir_details(handle=x64(handle), parentHandle=x64(parent), prow=0, type=DIR_DIR,
                       id=own, name=d.path if top else d.name, path=d.path,
                       size=x64(sum(f.size for f in d.files)), mtime=d.modif_ts,
                       flags=flags, max_mtime=d.recurs_modif_ts, children=children)


def _remote(ctx: ApiContext, handle: int, storage: int, owner: str, key: Any,
            handles: HandleTable) -> dict[str, Any]:
    tree = ctx.node.sharing.lists.trees.get(SslId.from_hex(owner))
    if tree is None:
        raise LookupError("gone")
    d = tree.root if key is None else tree.dirs.get(key[1])
    if d is None:
        raise LookupError("gone")
    if key is None:
        children = [_child(DIR_DIR, sub.name, handles.handle(storage, ("d", sub.hash)))
                    for sub in tree.children(d)]
        return dir_details(handle=x64(handle), prow=0, type=DIR_PERSON, id=owner,
                           name=owner, max_mtime=d.recurs_modif_ts, children=children)
    parent_handle = (handles.handle(storage, None) if d.parent is None
                     or d.parent == tree.root.hash else handles.handle(storage,
                                                                       ("d", d.parent)))
    if key[0] == "f":
        position = key[2]
        f = d.files[position]
        return dir_details(handle=x64(handle), parentHandle=x64(handles.handle(
            storage, ("d", d.hash))), prow=0, type=DIR_FILE, id=owner, name=f.name,
            hash=f.hash.to_hex(), path=tree.path_of(d.hash), size=x64(f.size),
            mtime=f.modif_ts, max_mtime=f.modif_ts)
    children = [_child(DIR_DIR, sub.name, handles.handle(storage, ("d", sub.hash)))
                for sub in tree.children(d)]
    children += [_child(DIR_FILE, f.name, handles.handle(storage, ("f", d.hash, i)))
                 for i, f in enumerate(d.files)]
    return dir_details(handle=x64(handle), parentHandle=x64(parent_handle), prow=0,
                       type=DIR_DIR, id=owner, name=d.name, path=tree.path_of(d.hash),
                       mtime=d.modif_ts, max_mtime=d.recurs_modif_ts, children=children)


@ENDPOINTS.add("/rsFiles/requestDirDetails")
def request_dir_details(ctx: ApiContext, p: Params) -> dict[str, Any]:
    _, handles = _state(ctx)
    handle = p.int64("handle")
    flags = p.int("flags")
    if handle == 0:
        return {"details": _root(ctx, flags, handles), "retval": True}
    found = handles.lookup(handle)
    if found is None or ctx.node.sharing is None:
        return {"details": dir_details(), "retval": False}
    storage, key = found
    try:
        if storage == LOCAL_STORAGE:
            return {"details": _local(ctx, handle, key, handles), "retval": True}
        owner = handles.owner(storage)
        if owner is None:
            raise LookupError("unknown storage")
        return {"details": _remote(ctx, handle, storage, owner, key, handles),
                "retval": True}
    except (LookupError, IndexError, ShareError):
        return {"details": dir_details(), "retval": False}


# --- downloads ---------------------------------------------------------------------------------

@ENDPOINTS.add("/rsFiles/FileRequest")
def file_request(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = p.hash("hash")
    size = p.int64("size")
    name = p.str("fileName")
    sources = [SslId.from_hex(s) for s in p.ssl_ids("srcIds")] or None
    if file_hash == NULL_HASH or size <= 0 or not name:
        return {"retval": False}
    try:
        ctx.node.transfers.download(Sha1Hash.from_hex(file_hash), size, name, sources)
    except (TransferError, OSError, ValueError):
        return {"retval": False}
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/FileCancel")
def file_cancel(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = p.hash("hash")
    completed, _ = _state(ctx)
    try:
        ctx.node.transfers.cancel(Sha1Hash.from_hex(file_hash))
    except UnknownTransferError:
        return {"retval": completed.items.pop(file_hash, None) is not None}
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/FileControl")
def file_control(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = Sha1Hash.from_hex(p.hash("hash"))
    flags = p.int("flags")
    transfers = ctx.node.transfers
    try:
        if flags & CTRL_PAUSE:
            transfers.pause(file_hash)
        elif flags & (CTRL_START | CTRL_FORCE_CHECK):
            transfers.resume(file_hash)
        else:
            return {"retval": False}
    except UnknownTransferError:
        return {"retval": False}
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/FileClearCompleted")
def file_clear_completed(ctx: ApiContext, p: Params) -> dict[str, Any]:
    completed, _ = _state(ctx)
    completed.items.clear()
    return {"retval": True}


@ENDPOINTS.add("/rsFiles/FileDownloads")
def file_downloads(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"hashs": list(_downloads(ctx))}


def _uploads(ctx: ApiContext) -> dict[str, list[Any]]:
    """Files friends download from us now (by hash, each with its peers), as the transfer
    service's upload server saw them (`services.transfer.server.UploadServer.uploads`)."""
    out: dict[str, list[Any]] = {}
    for up in ctx.node.transfers.server.uploads(ctx.reactor.seconds()):
        out.setdefault(up.file_hash.to_hex(), []).append(up)
    return out


def _upload_info(ctx: ApiContext, file_hash: str, ups: list[Any]) -> dict[str, Any]:
    """A ``FileInfo`` of an upload: the file, and per peer a ``TransferInfo``."""
    f = _local_file(ctx, file_hash)
    found = None if f is not None else ctx.node.transfers.extra.lookup(
        Sha1Hash.from_hex(file_hash))
    path = f.path if f is not None else (found[0] if found is not None else "")
    peers = [{"peerId": up.peer.to_hex(), "name": "", "tfRate": up.rate() / 1024,
              "status": FT_DOWNLOADING, "transfered": x64(up.sent)} for up in ups]
    return file_info(path=path, fname=os.path.basename(path), hash=file_hash,
                     size=x64(ups[0].size), transfered=x64(sum(up.sent for up in ups)),
                     tfRate=sum(up.rate() for up in ups) / 1024,
                     downloadStatus=FT_DOWNLOADING, peers=peers,
                     lastTS=x64(int(max(up.last for up in ups))))


@ENDPOINTS.add("/rsFiles/FileUploads",
               note="a file is listed while a friend asked for its data in the last 10 s")
def file_uploads(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"hashs": list(_uploads(ctx)), "retval": True}


@ENDPOINTS.add("/rsFiles/FileDetails")
def file_details(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = p.hash("hash")
    hints = p.int("hintflags")
    if hints & HINT_DOWNLOAD or not hints & (HINT_LOCAL | HINT_EXTRA):
        info = _downloads(ctx).get(file_hash)
        if info is not None:
            return {"info": _download_info(ctx, info), "retval": True}
    if hints & HINT_UPLOAD:
        ups = _uploads(ctx).get(file_hash)
        if ups:
            return {"info": _upload_info(ctx, file_hash, ups), "retval": True}
    if hints & (HINT_LOCAL | HINT_EXTRA):
        f = _local_file(ctx, file_hash)
        if f is not None:
            return {"info": file_info(storage_permission_flags=SHARE_ALL, path=f.path,
                                      fname=f.name, hash=file_hash, size=x64(f.size),
                                      downloadStatus=FT_COMPLETE), "retval": True}
    return {"info": file_info(), "retval": False}


@ENDPOINTS.add("/rsFiles/alreadyHaveFile")
def already_have_file(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = p.hash("hash")
    if file_hash != NULL_HASH:
        found = ctx.node.transfers.extra.lookup(Sha1Hash.from_hex(file_hash))
        if found is not None:
            path, size = found
            return {"info": file_info(path=path, fname=os.path.basename(path),
                                      hash=file_hash, size=x64(size),
                                      downloadStatus=FT_COMPLETE), "retval": True}
        f = _local_file(ctx, file_hash)
        if f is not None:
            return {"info": file_info(path=f.path, fname=f.name, hash=file_hash,
                                      size=x64(f.size), downloadStatus=FT_COMPLETE),
                    "retval": True}
    return {"info": file_info(), "retval": False}


@ENDPOINTS.add("/rsFiles/FileDownloadChunksDetails")
def file_download_chunks_details(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = p.hash("hash")
    transfers = ctx.node.transfers
    t = transfers.downloads.get(Sha1Hash.from_hex(file_hash))
    completed, _ = _state(ctx)
    if t is not None:
        chunks = t.engine.chunks
        states = [int(chunks.state(i)) for i in range(chunks.count)]
        size = t.partial.size
    elif file_hash in completed.items:
        size = completed.items[file_hash].size
        states = [2] * max(1, -(-size // CHUNK_SIZE))
    else:
        return {"info": {"file_size": x64(0), "chunk_size": 0, "strategy": 0, "chunks": [],
                         "compressed_peer_availability_maps": [], "active_chunks": [],
                         "pending_slices": []}, "retval": False}
    return {"info": {"file_size": x64(size), "chunk_size": CHUNK_SIZE,
                     "strategy": _STRATEGIES.get(transfers.strategy.value, 2),
                     "chunks": states, "compressed_peer_availability_maps": [],
                     "active_chunks": [], "pending_slices": []}, "retval": True}


# --- settings ----------------------------------------------------------------------------------

@ENDPOINTS.add("/rsFiles/getDownloadDirectory")
def get_download_directory(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": str(ctx.node.transfers.incoming_dir)}


@ENDPOINTS.add("/rsFiles/getPartialsDirectory")
def get_partials_directory(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": str(ctx.node.transfers.partials_dir)}


def _getter(path: str, attr: str) -> None:
    @ENDPOINTS.add(path)
    def get(ctx: ApiContext, p: Params) -> dict[str, Any]:
        return {"retval": getattr(ctx.settings, attr)}


def _setter(path: str, attr: str, name: str, lo: int, hi: int,
            note: str = "remembered; the node does not act on it") -> None:
    @ENDPOINTS.add(path, note=note)
    def set_(ctx: ApiContext, p: Params) -> dict[str, Any]:
        value = p.int(name, getattr(ctx.settings, attr), lo=lo, hi=hi)
        setattr(ctx.settings, attr, value)
        return {}


_getter("/rsFiles/getQueueSize", "queue_size")
_setter("/rsFiles/setQueueSize", "queue_size", "s", 1, 100)
_getter("/rsFiles/defaultChunkStrategy", "default_chunk_strategy")
_setter("/rsFiles/setDefaultChunkStrategy", "default_chunk_strategy", "strategy", 0, 2)
_getter("/rsFiles/freeDiskSpaceLimit", "free_disk_space_limit")
_setter("/rsFiles/setFreeDiskSpaceLimit", "free_disk_space_limit", "minimumFreeMB", 0,
        1 << 30)
_getter("/rsFiles/filePermDirectDL", "file_perm_direct_dl")
_setter("/rsFiles/setFilePermDirectDL", "file_perm_direct_dl", "perm", 1, 3)
_getter("/rsFiles/getMaxUploadSlotsPerFriend", "max_upload_slots_per_friend")
_setter("/rsFiles/setMaxUploadSlotsPerFriend", "max_upload_slots_per_friend", "n", 0, 1000)
_getter("/rsFiles/defaultEncryptionPolicy", "default_encryption_policy")
_setter("/rsFiles/setDefaultEncryptionPolicy", "default_encryption_policy", "policy", 1, 2)


@ENDPOINTS.add("/rsFiles/setDownloadDirectory", "/rsFiles/setPartialsDirectory",
               note="folders are fixed in the account directory: refused")
def set_directory(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@ENDPOINTS.add("/rsFiles/getChunkStrategy")
def get_chunk_strategy(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = p.hash("hash")
    if Sha1Hash.from_hex(file_hash) not in ctx.node.transfers.downloads:
        return {"s": 0, "retval": False}
    return {"s": ctx.settings.chunk_strategies.get(
        file_hash, _STRATEGIES.get(ctx.node.transfers.strategy.value, 2)), "retval": True}


@ENDPOINTS.add("/rsFiles/setChunkStrategy", note="remembered per download; not acted on")
def set_chunk_strategy(ctx: ApiContext, p: Params) -> dict[str, Any]:
    file_hash = p.hash("hash")
    if Sha1Hash.from_hex(file_hash) not in ctx.node.transfers.downloads:
        return {"retval": False}
    ctx.settings.chunk_strategies[file_hash] = p.int("newStrategy", 2, lo=0, hi=2)
    return {"retval": True}


# --- search ------------------------------------------------------------------------------------

@ENDPOINTS.add("/rsFiles/turtleSearch",
               note="searches the friends' synced file lists (no turtle routing yet)")
def turtle_search(ctx: ApiContext, p: Params) -> dict[str, Any]:
    words = p.str("matchString").split()
    request_id = secrets.randbelow(1 << 31) + 1
    sharing = ctx.node.sharing

    def report() -> None:
        if sharing is None or not words:
            return
        results = [{"fSize": x64(r.size), "fHash": r.hash.to_hex(), "fName": r.name,
                    "fWeight": 0.0, "fSnippet": ""}
                   for r in sharing.search(words)[:MAX_SEARCH_RESULTS]]
        if results:
            ctx.publish(file_transfer_event(ctx.now(), 3, request_id=request_id,
                                            results=results))

    ctx.reactor.callLater(0, report)
    return {"retval": request_id}
