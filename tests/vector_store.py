"""The real-node vectors shipped in ``tests/vectors/retroshare/``, laid out for the tests.

The repository carries the vectors compressed (``captures.tar.xz`` and friends) so that a bare
clone runs the whole suite. Tests want plain folders, so the first test session of a checkout
checks every shipped file against ``SHA256SUMS`` and lays the tree out under
``tests/vectors/.cache/retroshare-<digest>/``: built in a private temporary folder, then
renamed into place, so a concurrent or interrupted session never sees half a tree. The digest
is that of ``SHA256SUMS``, so changed vectors get a fresh folder and the stale ones are removed.
"""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import tarfile
import tempfile

#: Where the repository ships the vectors.
SHIPPED = pathlib.Path(__file__).resolve().parent / "vectors" / "retroshare"
#: Git-ignored folder that holds the extracted tree.
CACHE = SHIPPED.parent / ".cache"
#: Largest archive member accepted (the biggest capture stream is a few MiB).
MAX_MEMBER_BYTES = 64 * 1024 * 1024
#: Most members one archive may hold.
MAX_MEMBERS = 1000


class VectorError(Exception):
    """The shipped vectors are missing, altered or malformed."""


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sums(folder: pathlib.Path) -> list[str]:
    """Check every file ``folder/SHA256SUMS`` lists; return the names it lists."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise VectorError(f"{sums} is missing")
    names = []
    for line in sums.read_text().splitlines():
        expected, _, name = line.partition("  ")
        path = folder / name
        if not path.is_file():
            raise VectorError(f"{path} is listed in {sums} but missing")
        if _sha256(path) != expected:
            raise VectorError(f"{path} does not match its SHA-256 in {sums}")
        names.append(name)
    return names


def _extract(archive: pathlib.Path, into: pathlib.Path) -> None:
    """Extract one folder archive, accepting only plain files and folders under its name."""
    folder = archive.name.removesuffix(".tar.xz")
    with tarfile.open(archive, "r:xz") as tar:
        members = tar.getmembers()
        if len(members) > MAX_MEMBERS:
            raise VectorError(f"{archive} holds {len(members)} members (most {MAX_MEMBERS})")
        for m in members:
            parts = pathlib.PurePosixPath(m.name).parts
            if (not parts or parts[0] != folder or ".." in parts or m.name.startswith("/")
                    or not (m.isfile() or m.isdir()) or m.size > MAX_MEMBER_BYTES):
                raise VectorError(f"{archive}: unexpected member {m.name!r}")
        tar.extractall(into, members=members, filter="data")


def _build(target: pathlib.Path) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = pathlib.Path(tempfile.mkdtemp(prefix=".partial-", dir=CACHE))
    try:
        for name in _check_sums(SHIPPED):
            source = SHIPPED / name
            if name.endswith(".tar.xz"):
                _extract(source, partial)
            elif name == "accounts.md":
                shutil.copyfile(source, partial / "README.md")
            else:
                shutil.copyfile(source, partial / name)
        try:
            partial.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent session's finished tree
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def vectors_root() -> pathlib.Path:
    """The extracted vectors folder (built on first use), as ``shared/vectors/retroshare``."""
    if not SHIPPED.is_dir():
        raise VectorError(f"real-node vectors missing at {SHIPPED}")
    key = hashlib.sha256((SHIPPED / "SHA256SUMS").read_bytes()).hexdigest()[:16]
    target = CACHE / f"retroshare-{key}"
    if not target.is_dir():
        _build(target)
        for stale in CACHE.glob("retroshare-*"):
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)
    return target
