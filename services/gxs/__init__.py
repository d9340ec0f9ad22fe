"""gxs: RetroShare's generic exchange (GXS) base, shared by every GXS service.

Keys, ids and signatures (`services.gxs.security`), the services' authentication policies
(`services.gxs.policy`), the sqlite store (`services.gxs.store`), and the NXS synchronisation
core (`services.gxs.nxs_core`) that moves signed groups and messages between friends.
"""

from services.gxs.nxs_core import NxsCore
from services.gxs.policy import POLICIES, policy_for
from services.gxs.security import AuthenPolicy, KeyPair, SignatureError
from services.gxs.service import GxsNetService
from services.gxs.store import GxsStore

__all__ = ["AuthenPolicy", "GxsNetService", "GxsStore", "KeyPair", "NxsCore", "POLICIES",
           "SignatureError", "policy_for"]
