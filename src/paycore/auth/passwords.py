"""Console passwords: argon2id hashes and the rules a new password must pass."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12

# Passwords of 12+ characters that top breach lists and vendor defaults; refused outright.
WELL_KNOWN_PASSWORDS = frozenset(
    {
        "password1234",
        "password12345",
        "password123456",
        "password1234567",
        "password12345678",
        "passwordpassword",
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789abc",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwertyuiopasdf",
        "qwerty123456",
        "qwerty1234567",
        "asdfghjkl123",
        "abcdefghijkl",
        "abc123456789",
        "iloveyou1234",
        "letmein12345",
        "welcome12345",
        "welcome123456",
        "changeme1234",
        "changeme12345",
        "changemenow!",
        "administrator",
        "administrator1",
        "admin1234567",
        "adminadmin123",
        "adminpassword",
        "paycore12345",
        "paycorepaycore",
        "default12345",
        "defaultpassword",
        "secret123456",
        "supersecret123",
        "trustno1trustno1",
        "correcthorsebatterystaple",
        "p@ssw0rd1234",
        "p@ssword1234",
        "passw0rd1234",
        "monkey123456",
        "dragon123456",
        "football1234",
        "baseball1234",
        "sunshine1234",
        "princess1234",
    }
)

_hasher = PasswordHasher()


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Every reason `password` is refused, in plain words; empty when it is acceptable."""
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"is shorter than {MIN_PASSWORD_LENGTH} characters")
    if password.lower() in WELL_KNOWN_PASSWORDS:
        problems.append("is a well-known password that attackers try first")
    if password and len(set(password)) <= 2:
        problems.append("repeats one or two characters")
    if email and password.lower() in {email.lower(), email.split("@", 1)[0].lower()}:
        problems.append("is the account's email address")
    return problems


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
