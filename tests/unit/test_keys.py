from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paycore.auth.keys import generate_api_key, hash_api_key, key_matches, parse_api_key
from paycore.auth.models import KeyKind, KeyMode


class TestGenerate:
    def test_shape_of_a_secret_test_key(self) -> None:
        key = generate_api_key(KeyKind.SECRET, KeyMode.TEST)
        assert key.plaintext.startswith("sk_test_")
        assert len(key.plaintext) == len("sk_test_") + 44
        assert key.prefix == key.plaintext[:20]
        assert key.last4 == key.plaintext[-4:]
        assert key.secret_hash == hash_api_key(key.plaintext)
        assert key.plaintext not in key.secret_hash

    def test_publishable_live_prefix(self) -> None:
        assert generate_api_key(KeyKind.PUBLISHABLE, KeyMode.LIVE).plaintext.startswith("pk_live_")

    def test_keys_are_unique(self) -> None:
        assert len({generate_api_key(KeyKind.SECRET, KeyMode.TEST).plaintext for _ in range(200)}) == 200


class TestParse:
    def test_round_trip(self) -> None:
        for kind in KeyKind:
            for mode in KeyMode:
                key = generate_api_key(kind, mode)
                parsed = parse_api_key(key.plaintext)
                assert parsed is not None
                assert (parsed.kind, parsed.mode, parsed.prefix) == (kind, mode, key.prefix)

    def test_malformed_keys_are_refused(self) -> None:
        good = generate_api_key(KeyKind.SECRET, KeyMode.TEST).plaintext
        for bad in [
            "",
            good[:-1],
            good + "x",
            good.replace("sk_", "rk_"),
            good.replace("_test_", "_prod_"),
            good[:-1] + "!",
            " " + good,
            "Bearer " + good,
        ]:
            assert parse_api_key(bad) is None, bad

    @given(st.text(max_size=80))
    def test_arbitrary_text_never_crashes(self, text: str) -> None:
        parsed = parse_api_key(text)
        assert parsed is None or text.startswith(("sk_", "pk_"))


class TestMatch:
    def test_only_the_exact_key_matches(self) -> None:
        key = generate_api_key(KeyKind.SECRET, KeyMode.TEST)
        assert key_matches(key.plaintext, key.secret_hash)
        tampered = key.plaintext[:-1] + ("A" if key.plaintext[-1] != "A" else "B")
        assert not key_matches(tampered, key.secret_hash)
