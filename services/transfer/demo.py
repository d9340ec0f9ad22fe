# -*- test-case-name: tests.test_transfer_demo -*-
"""The file-sharing step of ``rsnode demo``: one node shares a folder, a friend finds a file
in it and downloads it, with progress lines a person can follow."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .service import TransferCompleted, TransferInfo, TransferProgress

__all__ = ["demo_file_sharing", "DemoTimeoutError"]

#: Seconds each wait of the step may take.
STEP_TIMEOUT = 15.0
#: The sharer's upload limit during the step (bytes/s), so that progress can be seen.
DEMO_UPLOAD_RATE = 4_000_000
#: The demo folder's text file, and its files: path -> size (the video shows progress).
README = b"Shared by the rsproto demo.\n"
DEMO_FILES = {"notes/readme.txt": len(README), "photos/sunset.jpg": 3 << 20,
              "video/holiday.mp4": 16 << 20}


class DemoTimeoutError(RuntimeError):
    """A step of the demo did not happen within `STEP_TIMEOUT` seconds."""


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n:.0f} bytes"


def make_demo_folder(folder: Path) -> dict[str, bytes]:
    """Write the demo's files (dated a minute back: a share indexes only files that have
    settled) and return their SHA-1s by relative path."""
    rng = random.Random(6)
    digests = {}
    past = time.time() - 60
    for rel, size in DEMO_FILES.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = README if rel.endswith(".txt") else rng.randbytes(size)
        path.write_bytes(data)
        os.utime(path, (past, past))
        digests[rel] = hashlib.sha1(data).digest()
    return digests


async def demo_file_sharing(reactor: Any, say: Callable[[str], None], sharer: Any,
                            getter: Any, sharer_name: str, getter_name: str,
                            folder: Path) -> TransferInfo:
    """``sharer`` shares ``folder`` (made here), ``getter`` syncs its list, searches it and
    downloads the biggest file, printing its progress; returns the finished download."""
    from twisted.internet import task

    async def until(predicate: Callable[[], Any], what: str) -> None:
        for _ in range(int(STEP_TIMEOUT / 0.05)):
            if predicate():
                return
            await task.deferLater(reactor, 0.05, lambda: None)
        raise DemoTimeoutError(f"the demo waited {STEP_TIMEOUT:.0f} s for {what}")

    digests = make_demo_folder(folder)
    total = sum(DEMO_FILES.values())
    say(f"  {sharer_name} shares the folder {folder.name}/ ({len(DEMO_FILES)} files, "
        f"{_mib(total)}) with friends")
    await sharer.sharing.share(folder)
    say(f"✓ {sharer_name}'s share is indexed: every file hashed (SHA-1)")
    getter.sharing.lists.refresh(sharer.ssl_id)

    def listing() -> list[Any]:
        return getter.sharing.search(min_size=0, friends=[sharer.ssl_id])

    await until(lambda: len(listing()) == len(DEMO_FILES), f"{sharer_name}'s file list")
    say(f"✓ {getter_name} synced {sharer_name}'s file list: "
        + ", ".join(sorted(f"{r.name} ({_mib(r.size)})" for r in listing())))
    (hit,) = getter.sharing.search(["holiday"], friends=[sharer.ssl_id])
    say(f"  {getter_name} searches for 'holiday', finds {hit.name} and downloads it from "
        f"{sharer_name}")
    done: list[TransferInfo] = []
    shown: list[int] = []

    def progress(event: TransferProgress) -> None:
        info = event.info
        if info.file_hash == hit.hash and info.done not in shown:
            shown.append(info.done)
            say(f"    {info.name}: {_mib(info.done)} of {_mib(info.size)} "
                f"({100 * info.done // info.size} %), {info.rate / 1e6:.1f} MB/s, "
                f"{info.state}")

    unsubscribe = [getter.subscribe(TransferProgress, progress),
                   getter.subscribe(TransferCompleted,
                                    lambda e: done.append(e.info) if e.info.file_hash == hit.hash
                                    else None)]
    say(f"  {sharer_name} caps uploads at {DEMO_UPLOAD_RATE / 1e6:.0f} MB/s "
        "for the demo, so that the progress shows")
    server = sharer.transfers.server
    server.set_rates(0, DEMO_UPLOAD_RATE, reactor.seconds())
    started = time.monotonic()
    try:
        getter.transfers.download(hit.hash, hit.size, hit.name,
                                  [s.ssl_id for s in hit.sources])
        await until(lambda: done, f"{hit.name} to arrive")
    finally:
        server.set_rates(0, 0, reactor.seconds())
        for u in unsubscribe:
            u()
    info = done[0]
    with open(info.path, "rb") as f:
        same = hashlib.sha1(f.read()).digest() == digests["video/holiday.mp4"]
    say(f"✓ {hit.name} arrived in {time.monotonic() - started:.1f} s "
        f"({_mib(info.size)}, whole-file SHA-1 {'verified' if same else 'WRONG'}); "
        f"saved as {info.path}")
    return info
