# -*- test-case-name: tests.test_cli_terminal -*-
"""Text from friends, made harmless for a terminal.

Chat lines, mail subjects and bodies, friend and location names, file names: a friend chooses
every byte of them.  Printed raw, an escape sequence in them retitles the terminal, clears the
screen, moves the cursor to forge a line, or (on some terminals) answers back into our input.
`safe` shows every control character as a visible escape instead (``\\x1b``, ``\\u202e``):
the C0 and C1 controls and DEL, and the bidirectional overrides that reorder what is shown.
Newlines and tabs stay in multi-line text (mail bodies).  Only the CLI's display uses this;
applications and ``--json`` get the text as received (JSON escapes controls itself).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["safe"]

#: Bidirectional formatting characters (embeddings, overrides, isolates, marks).
_BIDI: Final = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE: Final = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_MULTILINE: Final = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, *, multiline: bool = False) -> str:
    """``text`` with each control character shown as an escape (``multiline`` keeps ``\\n``
    and ``\\t``)."""
    return (_UNSAFE_MULTILINE if multiline else _UNSAFE).sub(_escape, str(text))
