"""reputation: opinions of GXS identities (service 0x0219) and the ban they lead to."""

from services.reputation.core import Level, ReputationCore
from services.reputation.service import ReputationService

__all__ = ["Level", "ReputationCore", "ReputationService"]
