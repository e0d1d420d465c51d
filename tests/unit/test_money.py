from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paycore.money import MAX_AMOUNT, Money, MoneyError, discount_for, minor_unit_exponent, sum_money

amounts = st.integers(min_value=0, max_value=10**12)


class TestMoney:
    def test_currency_is_normalized_and_checked(self) -> None:
        assert Money(100, "eur").currency == "EUR"
        with pytest.raises(MoneyError):
            Money(100, "EURO")
        with pytest.raises(MoneyError):
            Money(100, "XXX")

    @pytest.mark.parametrize("amount", [1.5, "100", True, None, MAX_AMOUNT + 1])
    def test_only_bounded_integers_are_amounts(self, amount: object) -> None:
        with pytest.raises(MoneyError):
            Money(amount, "EUR")  # type: ignore[arg-type]

    def test_currencies_never_mix(self) -> None:
        with pytest.raises(MoneyError):
            Money(1, "EUR") + Money(1, "USD")

    @pytest.mark.parametrize(
        ("money", "text"),
        [
            (Money(1250, "EUR"), "12.50 EUR"),
            (Money(5, "USD"), "0.05 USD"),
            (Money(1500, "JPY"), "1500 JPY"),
            (Money(1234, "KWD"), "1.234 KWD"),
            (Money(-250, "GBP"), "-2.50 GBP"),
        ],
    )
    def test_format_uses_the_currency_exponent(self, money: Money, text: str) -> None:
        assert money.format() == text

    def test_exponents(self) -> None:
        assert (minor_unit_exponent("JPY"), minor_unit_exponent("EUR"), minor_unit_exponent("BHD")) == (
            0,
            2,
            3,
        )


class TestDiscounts:
    def test_percent_rounds_half_up(self) -> None:
        assert Money(999, "EUR").percent(10) == Money(100, "EUR")  # 99.9 -> 100
        assert Money(994, "EUR").percent(10) == Money(99, "EUR")  # 99.4 -> 99

    def test_amount_off_is_capped_at_the_subtotal(self) -> None:
        assert discount_for(Money(500, "EUR"), percent_off=None, amount_off=Money(800, "EUR")) == Money(
            500, "EUR"
        )

    def test_amount_off_in_another_currency_is_refused(self) -> None:
        with pytest.raises(MoneyError):
            discount_for(Money(500, "EUR"), percent_off=None, amount_off=Money(100, "USD"))

    @given(amounts, st.integers(min_value=0, max_value=100))
    def test_percent_discount_is_between_zero_and_subtotal(self, subtotal: int, percent: int) -> None:
        discount = discount_for(Money(subtotal, "EUR"), percent_off=percent, amount_off=None)
        assert 0 <= discount.amount <= subtotal

    @given(amounts, amounts)
    def test_fixed_discount_never_makes_a_negative_total(self, subtotal: int, off: int) -> None:
        money = Money(subtotal, "EUR")
        total = money - discount_for(money, percent_off=None, amount_off=Money(off, "EUR"))
        assert 0 <= total.amount <= subtotal

    @given(st.lists(amounts, max_size=20))
    def test_sum_is_exact(self, values: list[int]) -> None:
        assert sum_money([Money(v, "EUR") for v in values], "EUR") == Money(sum(values), "EUR")
