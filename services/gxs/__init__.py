"""gxs: RetroShare's generic exchange (GXS) base, shared by every GXS service.

Keys, ids and signatures (`services.gxs.security`), the services' authentication policies
(`services.gxs.policy`), the sqlite store (`services.gxs.store`), and the NXS synchronisation
core (`services.gxs.nxs_core`) that moves signed groups and messages between friends.
"""

from services.gxs.policy import POLICIES, policy_for
from services.gxs.security import AuthenPolicy, KeyPair, SignatureError

__all__ = ["AuthenPolicy", "KeyPair", "POLICIES", "SignatureError", "policy_for"]
