# -*- test-case-name: tests.test_gxs_security -*-
"""Each GXS service's authentication policy (its ``*AuthenPolicy()`` in libretroshare)."""

from __future__ import annotations

from typing import Final

from pqi.items import ids
from services.gxs.security import (
    MSG_CHILD_AUTHOR,
    MSG_CHILD_PUBLISH,
    MSG_ROOT_AUTHOR,
    MSG_ROOT_PUBLISH,
    AuthenPolicy,
)

__all__ = ["POLICIES", "DEFAULT_POLICY", "policy_for"]

_AUTHORS: Final = MSG_ROOT_AUTHOR | MSG_CHILD_AUTHOR
_PUBLISH: Final = MSG_ROOT_PUBLISH | MSG_CHILD_PUBLISH
#: Identities, forums, boards, circles and GXS-trans: authors sign; restricted and private
#: groups also need the publish key.
DEFAULT_POLICY: Final = AuthenPolicy(public=_AUTHORS, restricted=_AUTHORS | _PUBLISH,
                                     private=_AUTHORS | _PUBLISH)

POLICIES: Final[dict[int, AuthenPolicy]] = {
    ids.SERVICE_GXSID: DEFAULT_POLICY,
    ids.SERVICE_FORUMS: DEFAULT_POLICY,
    ids.SERVICE_POSTED: DEFAULT_POLICY,
    ids.SERVICE_GXSCIRCLE: DEFAULT_POLICY,
    ids.SERVICE_GXS_TRANS: DEFAULT_POLICY,
    # Channels: posts carry the publish signature, comments the author's.
    ids.SERVICE_CHANNELS: AuthenPolicy(
        public=MSG_ROOT_PUBLISH | MSG_CHILD_AUTHOR,
        restricted=MSG_ROOT_PUBLISH | MSG_CHILD_AUTHOR | MSG_CHILD_PUBLISH,
        private=MSG_ROOT_PUBLISH | MSG_CHILD_AUTHOR | MSG_CHILD_PUBLISH),
}


def policy_for(service: int) -> AuthenPolicy:
    """The policy of GXS service ``service`` (the common one for services not listed)."""
    return POLICIES.get(service, DEFAULT_POLICY)
