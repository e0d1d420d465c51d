from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from paycore.ids import encode_base62, new_id


def test_ids_carry_their_prefix_and_a_fixed_width() -> None:
    value = new_id("ord")
    assert value.startswith("ord_")
    assert len(value) == len("ord_") + 22


def test_ids_sort_by_creation_time() -> None:
    first = new_id("ord")
    time.sleep(0.002)
    second = new_id("ord")
    assert first < second


def test_ids_do_not_collide() -> None:
    assert len({new_id("x") for _ in range(10_000)}) == 10_000


@given(st.integers(min_value=0, max_value=2**128 - 1), st.integers(min_value=0, max_value=2**128 - 1))
def test_base62_preserves_order(a: int, b: int) -> None:
    assert (a < b) == (encode_base62(a, 22) < encode_base62(b, 22))
