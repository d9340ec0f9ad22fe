"""Service ids (``rsserviceids.h``)."""

from __future__ import annotations

from typing import Final

SERVICE_GOSSIP_DISCOVERY: Final = 0x0011
SERVICE_CHAT: Final = 0x0012
SERVICE_MSG: Final = 0x0013
SERVICE_TURTLE: Final = 0x0014
SERVICE_TUNNEL: Final = 0x0015
SERVICE_HEARTBEAT: Final = 0x0016
SERVICE_FILE_TRANSFER: Final = 0x0017
SERVICE_GROUTER: Final = 0x0018
SERVICE_FILE_DATABASE: Final = 0x0019
SERVICE_SERVICEINFO: Final = 0x0020
SERVICE_BANDWIDTH_CONTROL: Final = 0x0021
SERVICE_MAIL: Final = 0x0022
SERVICE_DIRECT_MAIL: Final = 0x0023
SERVICE_DISTANT_MAIL: Final = 0x0024
SERVICE_SERVICE_CONTROL: Final = 0x0026
SERVICE_DISTANT_CHAT: Final = 0x0027
SERVICE_GXS_TUNNEL: Final = 0x0028
SERVICE_BANLIST: Final = 0x0101
SERVICE_STATUS: Final = 0x0102
SERVICE_FRIEND_SERVER: Final = 0x0103
SERVICE_NXS: Final = 0x0200
SERVICE_GXSID: Final = 0x0211
SERVICE_PHOTO: Final = 0x0212
SERVICE_WIKI: Final = 0x0213
SERVICE_WIRE: Final = 0x0214
SERVICE_FORUMS: Final = 0x0215
SERVICE_POSTED: Final = 0x0216
SERVICE_CHANNELS: Final = 0x0217
SERVICE_GXSCIRCLE: Final = 0x0218
SERVICE_REPUTATION: Final = 0x0219
SERVICE_GXS_RECOGN: Final = 0x0220
SERVICE_GXS_TRANS: Final = 0x0230
SERVICE_RTT: Final = 0x1011
SERVICE_GXS_DISTANT: Final = 0x2233
SERVICE_PACKET_SLICING_PROBE: Final = 0xAABB

#: Ours, not RetroShare's: receipts between two rsproto nodes for mail they committed
#: (`pqi.items.receipt`, `services.mail.receipt`).  0x7E00..0x7EFF holds no RetroShare service
#: or plugin id (RetroShare's are 0x0011..0x0317, 0x1011, 0x2001..0x2003, 0x2233, 0xAABB,
#: 0xBEEF, 0xF1D0); a RetroShare node leaves an id it does not run out of the services it
#: enables with us, so it never receives these items.
SERVICE_MAIL_RECEIPT: Final = 0x7E01
