from __future__ import annotations

from paycore.auth.passwords import hash_password, password_problems, verify_password


class TestPasswordRules:
    def test_a_long_unusual_password_passes(self) -> None:
        assert password_problems("violet-orbit-tundra-42", email="o@shop.test") == []

    def test_short_password_is_refused(self) -> None:
        assert password_problems("Sh0rt!pass") == ["is shorter than 12 characters"]

    def test_well_known_passwords_are_refused_whatever_the_case(self) -> None:
        assert "is a well-known password that attackers try first" in password_problems("Password1234")
        assert "is a well-known password that attackers try first" in password_problems("CHANGEME1234")

    def test_repeated_characters_are_refused(self) -> None:
        assert "repeats one or two characters" in password_problems("abababababab")

    def test_the_email_is_not_a_password(self) -> None:
        assert "is the account's email address" in password_problems(
            "owner@shop.test", email="owner@shop.test"
        )


class TestHashing:
    def test_argon2_hash_verifies_only_the_password(self) -> None:
        hashed = hash_password("violet-orbit-tundra-42")
        assert hashed.startswith("$argon2id$")
        assert verify_password(hashed, "violet-orbit-tundra-42")
        assert not verify_password(hashed, "violet-orbit-tundra-43")
        assert not verify_password("not-a-hash", "violet-orbit-tundra-42")
