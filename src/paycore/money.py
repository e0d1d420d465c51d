"""Money: an integer amount in minor units and an ISO 4217 currency. Pure; never a float."""

from __future__ import annotations

from dataclasses import dataclass

# Active ISO 4217 codes. Every code not in the exponent table below has two minor-unit digits.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG
    """.split()
)
_EXPONENTS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}

# Far above any real order, far below where a 64-bit column or a JSON number loses precision.
MAX_AMOUNT = 10**15


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""


def normalize_currency(code: str) -> str:
    upper = code.strip().upper()
    if upper not in CURRENCIES:
        raise MoneyError(f"'{code}' is not an ISO 4217 currency code")
    return upper


def minor_unit_exponent(currency: str) -> int:
    return _EXPONENTS.get(normalize_currency(currency), 2)


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("an amount is an integer number of minor units")
        if not -MAX_AMOUNT <= self.amount <= MAX_AMOUNT:
            raise MoneyError(f"amount is outside ±{MAX_AMOUNT}")
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def percent(self, percent: int) -> Money:
        """`percent`% of this amount, rounded half up to a whole minor unit."""
        if not 0 <= percent <= 100:
            raise MoneyError("a percentage is between 0 and 100")
        return Money((self.amount * percent + 50) // 100, self.currency)

    def format(self) -> str:
        """'12.50 EUR' — for people (emails, the console), never for arithmetic."""
        exponent = minor_unit_exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        whole, fraction = divmod(abs(self.amount), 10**exponent)
        digits = f"{whole}.{fraction:0{exponent}d}" if exponent else str(whole)
        return f"{sign}{digits} {self.currency}"


def sum_money(amounts: list[Money], currency: str) -> Money:
    total = Money(0, currency)
    for amount in amounts:
        total = total + amount
    return total


def discount_for(subtotal: Money, *, percent_off: int | None, amount_off: Money | None) -> Money:
    """The discount a promo gives on `subtotal`; never more than the subtotal itself."""
    if percent_off is not None:
        discount = subtotal.percent(percent_off)
    elif amount_off is not None:
        subtotal._same_currency(amount_off)
        discount = amount_off
    else:
        discount = Money(0, subtotal.currency)
    if discount.amount > subtotal.amount:
        return subtotal
    return discount
