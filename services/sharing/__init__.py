# -*- test-case-name: tests.test_sharing -*-
"""File sharing: shared folders, hashing with a persistent cache, the shared-file index,
friends' file lists (service 0x0019) with their directory content format, and local search.

File transfers (service 0x0017) serve from `SharedIndex.lookup`.
"""

from .dirlist import (
    MAX_DIR_CONTENT_SIZE,
    DirContent,
    RemoteFile,
    decode_dir,
    encode_dir,
)
from .filelists import FileListsService, split_response
from .hashing import FileChangedError, HashCache, Hasher
from .index import ROOT_HASH, LocalDir, LocalFile, SharedIndex, dir_hash
from .manager import FileSharing, SharingOptions, UnknownFriendListError
from .remote import RemoteDir, RemoteTree, TreeFullError, UnknownPathError
from .remote_store import RemoteTreeStore
from .search import EmptyQueryError, Query, SearchResult, Source, search
from .shares import (
    DuplicateShareError,
    NotAFolderError,
    SharedFolder,
    ShareError,
    ShareList,
    UnknownShareError,
    Visibility,
)

__all__ = [
    "MAX_DIR_CONTENT_SIZE", "DirContent", "RemoteFile", "decode_dir", "encode_dir",
    "FileListsService", "split_response",
    "FileChangedError", "HashCache", "Hasher",
    "ROOT_HASH", "LocalDir", "LocalFile", "SharedIndex", "dir_hash",
    "FileSharing", "SharingOptions", "UnknownFriendListError",
    "RemoteDir", "RemoteTree", "TreeFullError", "UnknownPathError", "RemoteTreeStore",
    "EmptyQueryError", "Query", "SearchResult", "Source", "search",
    "DuplicateShareError", "NotAFolderError", "SharedFolder", "ShareError", "ShareList",
    "UnknownShareError", "Visibility",
]
