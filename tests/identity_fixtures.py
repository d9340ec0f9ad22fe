# -*- test-case-name: tests.test_sslcert -*-
"""Session-wide profile keys, location keys and certificates shared by identity tests.

RSA generation dominates identity test time, so each key is made once per session (2048 bits:
the smallest size `ProfileKey` accepts).  Import the fixtures into a test module with
``from tests.identity_fixtures import *  # noqa: F403``.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pqi.identity.pgp import ProfileKey
from pqi.identity.sslcert import LocationCertificate, make_location_certificate

__all__ = [
    "profile_key", "profile_key2", "location_key", "location_key2", "location_cert",
    "location_cert2", "make_rsa_key",
]

#: Fixed creation time so keys made in different runs share the same shape.
CREATED = 1700000000


def make_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key of the size identity tests use."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@pytest.fixture(scope="session")
def profile_key() -> ProfileKey:
    """A test profile named "alice"."""
    return ProfileKey.generate("alice", bits=2048, created=CREATED)


@pytest.fixture(scope="session")
def profile_key2() -> ProfileKey:
    """A second, unrelated test profile named "bob"."""
    return ProfileKey.generate("bob", bits=2048, created=CREATED)


@pytest.fixture(scope="session")
def location_key() -> rsa.RSAPrivateKey:
    """The TLS key of ``profile_key``'s location."""
    return make_rsa_key()


@pytest.fixture(scope="session")
def location_key2() -> rsa.RSAPrivateKey:
    """The TLS key of ``profile_key2``'s location."""
    return make_rsa_key()


@pytest.fixture(scope="session")
def location_cert(profile_key: ProfileKey, location_key: rsa.RSAPrivateKey
                  ) -> LocationCertificate:
    """``location_key`` certified by ``profile_key``."""
    return make_location_certificate(profile_key, location_key, signed_at=CREATED + 60)


@pytest.fixture(scope="session")
def location_cert2(profile_key2: ProfileKey, location_key2: rsa.RSAPrivateKey
                   ) -> LocationCertificate:
    """``location_key2`` certified by ``profile_key2``."""
    return make_location_certificate(profile_key2, location_key2, signed_at=CREATED + 60)
