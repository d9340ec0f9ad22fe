"""Private keys at rest: the password is checked only through the full PBKDF2 (finding 3 of
the audit: the PKCS#12 MAC had 2,048 iterations), and old PKCS#12 accounts are migrated."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from pqi.identity.account import Account
from pqi.identity.errors import WrongPasswordError
from pqi.identity.keyfile import KDF_ROUNDS, KeyFileError, decrypt_key, encrypt_key

PASSWORD = "correct horse"


def _kdf_rounds(data: bytes) -> int:
    """The PBKDF2 iteration count written in an EncryptedPrivateKeyInfo (DER walked by hand,
    independently of the writer: PBES2 OID, then PBKDF2 OID, salt, INTEGER)."""
    pbkdf2_oid = bytes.fromhex("06092a864886f70d01050c")
    at = data.index(pbkdf2_oid) + len(pbkdf2_oid)
    assert data[at] == 0x30  # PBKDF2-params
    at += 2
    assert data[at] == 0x04  # salt
    at += 2 + data[at + 1]
    assert data[at] == 0x02  # iteration count
    n = data[at + 1]
    return int.from_bytes(data[at + 2:at + 2 + n], "big")


@pytest.fixture(scope="module")
def small_key() -> rsa.RSAPrivateKey:
    """A key small enough to make the tests quick (size does not matter to the container)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_round_trip_and_wrong_password(small_key: rsa.RSAPrivateKey) -> None:
    """A key comes back with its password; another password fails with KeyFileError."""
    data = encrypt_key(small_key, PASSWORD, rounds=1000)
    assert decrypt_key(data, PASSWORD).private_numbers() == small_key.private_numbers()
    with pytest.raises(KeyFileError):
        decrypt_key(data, "incorrect horse")
    with pytest.raises(KeyFileError):
        decrypt_key(data[:-5], PASSWORD)


def test_container_has_no_cheap_check(small_key: rsa.RSAPrivateKey) -> None:
    """The file is a PKCS#8 PBES2 container: no MAC with its own low iteration count, the
    PBKDF2 count is KDF_ROUNDS, and it is not a PKCS#12 (the format whose MAC was cheap)."""
    data = encrypt_key(small_key, PASSWORD)
    assert _kdf_rounds(data) == KDF_ROUNDS
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, PASSWORD.encode())


@pytest.mark.slow
def test_account_keys_have_no_cheap_mac(tmp_path: Path) -> None:
    """Every key file of a new account is protected by KDF_ROUNDS of PBKDF2 alone."""
    base = tmp_path / "acct"
    Account.create(base, "alice", "alice-laptop", PASSWORD, bits=2048)
    keys = [p for p in base.rglob("*") if p.suffix in (".p8", ".p12")]
    assert sorted(p.name for p in keys) == ["private_key.p8", "tls_key.p8"]
    for path in keys:
        assert _kdf_rounds(path.read_bytes()) == KDF_ROUNDS


@pytest.mark.slow
def test_legacy_pkcs12_account_is_migrated_on_unlock(tmp_path: Path) -> None:
    """An account written with PKCS#12 keys opens, and after the unlock holds PKCS#8 files
    (0600) with the same keys and no .p12; a wrong password migrates nothing."""
    base = tmp_path / "acct"
    acct = Account.create(base, "alice", "alice-laptop", PASSWORD, bits=2048)
    enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(1000)
           .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
           .hmac_hash(hashes.SHA256()).build(PASSWORD.encode()))
    for p8, key in ((base / "profile" / "private_key.p8", acct.profile.private_key),
                    (next(base.glob("locations/*/tls_key.p8")), acct.location_key)):
        p8.with_suffix(".p12").write_bytes(
            pkcs12.serialize_key_and_certificates(b"x", key, None, None, enc))
        p8.unlink()
    with pytest.raises(WrongPasswordError):
        Account.load(base, "incorrect horse")
    assert len(list(base.rglob("*.p12"))) == 2 and not list(base.rglob("*.p8"))
    again = Account.load(base, PASSWORD)
    assert again.ssl_id == acct.ssl_id
    assert (again.location_key.private_numbers() == acct.location_key.private_numbers())
    assert not list(base.rglob("*.p12"))
    p8s = list(base.rglob("*.p8"))
    assert len(p8s) == 2
    for path in p8s:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert _kdf_rounds(path.read_bytes()) == KDF_ROUNDS
    assert Account.load(base, PASSWORD).ssl_id == acct.ssl_id
