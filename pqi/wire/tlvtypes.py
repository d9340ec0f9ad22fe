# -*- test-case-name: tests.test_tlv -*-
"""TLV type numbers (``rstlvbase.h``), named as RetroShare names them, minus the prefix."""

from __future__ import annotations

from typing import Final

UINT32_SIZE: Final = 0x0030
UINT32_POP: Final = 0x0031
UINT32_AGE: Final = 0x0032
UINT32_OFFSET: Final = 0x0033
UINT32_BW: Final = 0x0035
UINT64_SIZE: Final = 0x0040
UINT64_OFFSET: Final = 0x0041
STR_PEERID: Final = 0x0050
STR_NAME: Final = 0x0051
STR_PATH: Final = 0x0052
STR_KEY: Final = 0x0053
STR_VALUE: Final = 0x0054
STR_COMMENT: Final = 0x0055
STR_TITLE: Final = 0x0056
STR_MSG: Final = 0x0057
STR_SUBJECT: Final = 0x0058
STR_PGPID: Final = 0x005B
STR_LOCATION: Final = 0x005C
STR_PGPCERT: Final = 0x005D
STR_VERSION: Final = 0x005F
STR_DYNDNS: Final = 0x0083
STR_DOMADDR: Final = 0x0084
IPV4: Final = 0x0085
IPV6: Final = 0x0086
STR_KEYID: Final = 0x00A4
HASH_SHA1: Final = 0x0070
SIGN_RSA_SHA1: Final = 0x0120
BIN_FILEDATA: Final = 0x0140
FILEITEM: Final = 0x1000
FILESET: Final = 0x1001
FILEDATA: Final = 0x1002
PEERSET: Final = 0x1021
HASHSET: Final = 0x1022
PGPIDSET: Final = 0x1023
GXSIDSET: Final = 0x1025
KEYSIGNATURE: Final = 0x1050
ADDRESS_INFO: Final = 0x1070
ADDRESS_SET: Final = 0x1071
ADDRESS: Final = 0x1072
BAN_LIST: Final = 0x1091
BAN_ENTRY: Final = 0x1092
