"""Stripe's test cards and IBANs: what each one does when a shopper pays with it."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass


class Outcome(enum.Enum):
    """What happens to a payment attempt."""

    SUCCEED = "succeed"
    DECLINE = "decline"
    AUTHENTICATE = "authenticate"
    # Bank debits: the session completes unpaid and settles later.
    SETTLE_LATER_OK = "settle_later_ok"
    SETTLE_LATER_FAIL = "settle_later_fail"


@dataclass(frozen=True)
class Attempt:
    """The verdict on one submitted payment form."""

    outcome: Outcome
    message: str | None = None
    decline_code: str | None = None


DECLINED = "Your card was declined."
INSUFFICIENT_FUNDS = "Your card has insufficient funds."
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different "
    "payment method and try again."
)
INVALID_NUMBER = "Your card number is invalid."
EXPIRY_PAST = "Your card's expiration date is in the past."
EXPIRY_INVALID = "Your card's expiration date is incomplete."
CVC_INCOMPLETE = "Your card's security code is incomplete."
EMAIL_MISSING = "Your email address is incomplete."
EMAIL_INVALID = "Your email address is invalid."
IBAN_INVALID = "Your IBAN is invalid."
NAME_MISSING = "Your name is incomplete."

# Test mode knows only its documented numbers; any other number is refused as invalid.
CARD_OUTCOMES: dict[str, Attempt] = {
    "4242424242424242": Attempt(Outcome.SUCCEED),
    "5555555555554444": Attempt(Outcome.SUCCEED),
    "4000000000000002": Attempt(Outcome.DECLINE, DECLINED, "generic_decline"),
    "4000000000009995": Attempt(Outcome.DECLINE, INSUFFICIENT_FUNDS, "insufficient_funds"),
    "4000002500003155": Attempt(Outcome.AUTHENTICATE),
    # Paid, then disputed at once (``disputes.DISPUTE_CARDS``).
    "4000000000000259": Attempt(Outcome.SUCCEED),
    "4000000000002685": Attempt(Outcome.SUCCEED),
}

IBAN_OUTCOMES: dict[str, Outcome] = {
    "DE89370400440532013000": Outcome.SETTLE_LATER_OK,
    "DE08370400440532013003": Outcome.SETTLE_LATER_OK,
    "DE62370400440532013001": Outcome.SETTLE_LATER_FAIL,
    "DE78370400440532013004": Outcome.SETTLE_LATER_FAIL,
    "AT611904300234573201": Outcome.SETTLE_LATER_OK,
    "AT861904300235473202": Outcome.SETTLE_LATER_FAIL,
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXPIRY = re.compile(r"^(\d{1,2})\s*/\s*(\d{2}|\d{4})$")


def digits_only(text: str) -> str:
    """Drop spaces and dashes people type into card numbers and IBANs."""
    return re.sub(r"[\s-]", "", text)


def luhn_ok(number: str) -> bool:
    """True when ``number`` passes the Luhn checksum."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """True when ``iban`` passes the ISO 13616 mod-97 check."""
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def check_email(email: str) -> str | None:
    """The error message for an email field, or None when it is fine."""
    if not email.strip():
        return EMAIL_MISSING
    if not _EMAIL.match(email.strip()):
        return EMAIL_INVALID
    return None


def parse_expiry(text: str) -> tuple[int, int] | None:
    """Month and four-digit year of an ``MM/YY`` (or ``MM/YYYY``) expiry, or None."""
    match = _EXPIRY.match(text.strip())
    if match is None:
        return None
    month, year = int(match.group(1)), int(match.group(2))
    return month, year + 2000 if year < 100 else year


def check_expiry(text: str, today: dt.date) -> str | None:
    """The error message for an ``MM/YY`` expiry, or None when it is in the future."""
    parsed = parse_expiry(text)
    if parsed is None:
        return EXPIRY_INVALID
    month, year = parsed
    if not 1 <= month <= 12:
        return "Your card's expiration date is invalid."
    if (year, month) < (today.year, today.month):
        return EXPIRY_PAST
    return None


def judge_card(number: str, expiry: str, cvc: str, today: dt.date) -> Attempt:
    """Validate a card form the way Checkout does, then look up the test number."""
    number = digits_only(number)
    if not luhn_ok(number):
        return Attempt(Outcome.DECLINE, INVALID_NUMBER, "invalid_number")
    expiry_error = check_expiry(expiry, today)
    if expiry_error:
        return Attempt(Outcome.DECLINE, expiry_error, "invalid_expiry")
    if not re.fullmatch(r"\d{3,4}", cvc.strip()):
        return Attempt(Outcome.DECLINE, CVC_INCOMPLETE, "incomplete_cvc")
    return CARD_OUTCOMES.get(number, Attempt(Outcome.DECLINE, INVALID_NUMBER, "invalid_number"))


def judge_iban(iban: str) -> Attempt:
    """Validate an IBAN; documented test IBANs pick the later outcome, others succeed."""
    iban = digits_only(iban).upper()
    if not iban_ok(iban):
        return Attempt(Outcome.DECLINE, IBAN_INVALID, "invalid_iban")
    return Attempt(IBAN_OUTCOMES.get(iban, Outcome.SETTLE_LATER_OK))
