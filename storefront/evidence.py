"""What Stripe's objects say about an order, and whether to believe it.

Plain Python like ``orders``: events and sessions arrive as mappings or plain
data. A signed event is Stripe's, but it is still checked against the order it
names: the session it was paid through, the amount and the currency. Money
that does not match never turns an order paid or refunded; it flags the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from storefront.orders import Move, OrderStatus
from storefront.paid_lines import LineAmounts, line_amounts


def status_from_session(session: Mapping[str, Any]) -> OrderStatus | None:
    """What a Checkout Session's state says about its order (None: still open)."""
    status = session.get("status")
    if status == "complete":
        if session.get("payment_status") in ("paid", "no_payment_required"):
            return OrderStatus.PAID
        return OrderStatus.PROCESSING
    if status == "expired":
        return OrderStatus.EXPIRED
    return None


@dataclass(frozen=True)
class EventOutcome:
    """What a webhook event means for an order, and how to find that order."""

    status: OrderStatus
    session_id: str | None = None
    order_token: str | None = None
    payment_intent: str | None = None
    customer_email: str | None = None
    # The money the object says moved: a session's amount_total, a charge's amount.
    amount: int | None = None
    currency: str | None = None
    # Stripe itself confirmed (by a look-up) that the order's session was paid
    # with this payment intent: what a refund of an order not paid here needs.
    vouched: bool = False
    # For a refund: the total refunded so far, and whether that is part of the charge.
    amount_refunded: int | None = None
    partial: bool = False
    # A session's breakdown: amount = subtotal - discount + shipping + exclusive tax.
    subtotal: int | None = None
    discount: int | None = None
    shipping: int | None = None
    tax: int | None = None
    # Whether all of amount_tax is added on top (False: some is inside the prices).
    tax_exclusive: bool = True
    shipping_name: str | None = None
    shipping_address: Mapping[str, Any] | None = None
    lines: tuple[LineAmounts, ...] = ()

    def amount_total_refunded(self, amount_total: int) -> int:
        """The refunded total to record: a full refund without the field is the whole order."""
        if self.amount_refunded is not None:
            return min(self.amount_refunded, amount_total)
        return 0 if self.partial else amount_total


@dataclass(frozen=True)
class Totals:
    """A Checkout Session's amounts and where it ships, as Stripe states them."""

    subtotal: int | None = None
    discount: int | None = None
    shipping: int | None = None
    tax: int | None = None
    tax_exclusive: bool = True
    shipping_name: str | None = None
    shipping_address: Mapping[str, Any] | None = None
    # Stripe's line items, when the session came with them (expanded or listed).
    lines: tuple[LineAmounts, ...] = ()


def session_totals(obj: Mapping[str, Any]) -> Totals:
    """Read a session's subtotal, discount, shipping, tax and shipping details."""
    details = _mapping(obj, "total_details")
    shipping = _mapping(_mapping(obj, "collected_information"), "shipping_details")
    address = _mapping(shipping, "address")
    subtotal, total = _int(obj, "amount_subtotal"), _int(obj, "amount_total")
    discount, ship, tax = (
        _int(details, "amount_discount"),
        _int(details, "amount_shipping"),
        _int(details, "amount_tax"),
    )
    return Totals(
        subtotal=subtotal,
        discount=discount,
        shipping=ship,
        tax=tax,
        tax_exclusive=tax_is_exclusive(subtotal, discount, ship, tax, total),
        shipping_name=_text(shipping, "name"),
        shipping_address={k: v for k, v in address.items() if isinstance(v, str)} or None,
        lines=line_amounts(obj.get("line_items")),
    )


def tax_is_exclusive(
    subtotal: int | None,
    discount: int | None,
    shipping: int | None,
    tax: int | None,
    total: int | None,
) -> bool:
    """Whether the tax adds to the total; True unless the amounts show it inside the prices.

    Tax inside the prices (a price's ``tax_behavior``) does not add to the total.
    """
    if subtotal is None or discount is None or shipping is None or tax is None or total is None:
        return True
    return not tax or total == subtotal - discount + shipping + tax


def _int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    # bool is an int in Python; a signed "true" is not an amount.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    # A signed event is Stripe's, but a field of the wrong shape must not turn
    # into a 500 that Stripe retries for days: treat it as absent.
    value = obj.get(key)
    if isinstance(value, Mapping):  # an expanded object: its id
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def outcome_from_event(event_type: str, obj: Mapping[str, Any]) -> EventOutcome | None:
    """Map a Stripe event to the transition it asks for (None: not ours to act on)."""
    if event_type.startswith("checkout.session."):
        status = {
            "checkout.session.completed": status_from_session(obj),
            "checkout.session.async_payment_succeeded": OrderStatus.PAID,
            "checkout.session.async_payment_failed": OrderStatus.FAILED,
            "checkout.session.expired": OrderStatus.EXPIRED,
        }.get(event_type)
        if status is None:
            return None
        totals = session_totals(obj)
        return EventOutcome(
            status=status,
            session_id=_text(obj, "id"),
            order_token=_text(obj, "client_reference_id"),
            payment_intent=_text(obj, "payment_intent"),
            customer_email=_text(_mapping(obj, "customer_details"), "email"),
            amount=_int(obj, "amount_total"),
            currency=_text(obj, "currency"),
            **vars(totals),
        )
    if event_type == "charge.refunded":
        # A full refund refunds the order; a partial one leaves it paid and
        # records the amount refunded so far.
        payment_intent = _text(obj, "payment_intent")
        if payment_intent is None:
            return None
        return EventOutcome(
            status=OrderStatus.REFUNDED,
            payment_intent=payment_intent,
            order_token=_text(_mapping(obj, "metadata"), "order_token"),
            amount=_int(obj, "amount"),
            currency=_text(obj, "currency"),
            amount_refunded=_int(obj, "amount_refunded"),
            partial=obj.get("refunded") is not True,
        )
    return None


@dataclass(frozen=True)
class DisputeReport:
    """What a ``charge.dispute.*`` event says: the dispute as Stripe holds it now."""

    id: str
    payment_intent: str | None
    charge: str | None
    amount: int
    currency: str
    reason: str | None
    status: str


DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)


def dispute_from_event(event_type: str, obj: Mapping[str, Any]) -> DisputeReport | None:
    """The dispute a ``charge.dispute.*`` event carries (None: not one, or malformed)."""
    if event_type not in DISPUTE_EVENTS:
        return None
    dispute_id, amount, currency = _text(obj, "id"), _int(obj, "amount"), _text(obj, "currency")
    status = _text(obj, "status")
    if dispute_id is None or amount is None or currency is None or status is None:
        return None
    return DisputeReport(
        id=dispute_id,
        payment_intent=_text(obj, "payment_intent"),
        charge=_text(obj, "charge"),
        amount=amount,
        currency=currency.lower(),
        reason=_text(obj, "reason"),
        status=status,
    )


# Outcomes that say money moved: only these need the amount to match.
_MONEY = frozenset({OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.REFUNDED})


def _money(amount: int | None, currency: str | None) -> str:
    return f"{amount if amount is not None else '?'} {currency or '?'}"


def mismatch(order: Mapping[str, Any], outcome: EventOutcome) -> str | None:
    """Why ``outcome`` cannot be believed for ``order`` (an orders row); None if it matches.

    Missing evidence counts as a mismatch: Stripe always sends a session's
    amount_total and currency and a charge's amount and currency.
    """
    stored_session = order["stripe_session_id"]
    if outcome.session_id and stored_session and outcome.session_id != stored_session:
        return f"names session {outcome.session_id}, but the order's session is {stored_session}"
    if outcome.order_token and outcome.order_token != order["token"]:
        return "names another order's token"
    if outcome.status not in _MONEY:
        return None
    currency = outcome.currency.lower() if outcome.currency else None
    if currency != order["currency"]:
        return f"says {_money(outcome.amount, currency)} for an order of " + _money(
            order["amount_total"], order["currency"]
        )
    if (reason := _amount_mismatch(order, outcome)) is not None:
        return reason
    if (reason := _shipping_mismatch(order, outcome)) is not None:
        return reason
    stored_intent = order["payment_intent"]
    if outcome.status is OrderStatus.REFUNDED:
        paid_here = order["status"] == OrderStatus.PAID and stored_intent == outcome.payment_intent
        if paid_here or outcome.vouched:
            return None
        if order["status"] == OrderStatus.PAID:
            return f"refunds payment {outcome.payment_intent}, but the order was paid by another"
        return "refunds an order that was never paid"
    if outcome.payment_intent and stored_intent and outcome.payment_intent != stored_intent:
        return f"names payment {outcome.payment_intent}, but the order's is {stored_intent}"
    return None


def _amount_mismatch(order: Mapping[str, Any], outcome: EventOutcome) -> str | None:
    """Why the amount cannot be right, or None.

    A refund, or a session without a breakdown, must move exactly what the
    order was (or was paid). A session with a breakdown must ask the subtotal
    we asked for, and its total must be Stripe's own arithmetic of it:
    discounts, shipping and tax are chosen on Stripe's page, not by us.
    """
    keys = order.keys()  # type: ignore[attr-defined]
    # amount_total is what we asked: the lines' sum, from our database.
    asked = order["amount_total"]
    paid = order["amount_paid"] if "amount_paid" in keys else None
    expected = paid if paid is not None else order["amount_total"]
    parts = (outcome.subtotal, outcome.discount, outcome.shipping, outcome.tax)
    if outcome.status is OrderStatus.REFUNDED or None in parts or outcome.amount is None:
        if outcome.amount != expected:
            return f"says {_money(outcome.amount, outcome.currency)} for an order of " + _money(
                expected, order["currency"]
            )
        return None
    subtotal, discount, shipping, tax = parts  # type: ignore[misc]
    if subtotal != asked:
        return f"says {_money(subtotal, outcome.currency)} for an order of " + _money(
            asked, order["currency"]
        )
    if min(discount, shipping, tax) < 0 or discount > subtotal:
        return "states a negative or oversized discount, shipping or tax"
    total = subtotal - discount + shipping + (tax if outcome.tax_exclusive else 0)
    if outcome.amount != total:
        return f"says {outcome.amount} but its own parts add up to {total}"
    return None


def offered_shipping(raw: str | None) -> frozenset[int] | None:
    """The shipping amounts an order's session was offered (None: never recorded)."""
    if raw is None:
        return None
    return frozenset(int(part) for part in raw.split(",") if part.isdigit())


def _shipping_mismatch(order: Mapping[str, Any], outcome: EventOutcome) -> str | None:
    """Why a paid session's shipping is not one the shop offered it, or None.

    Rates are chosen on Stripe's page, but only among those the shop sent; an
    amount outside them (or any for an order offered none) is not ours.
    """
    keys = order.keys()  # type: ignore[attr-defined]
    if outcome.status is OrderStatus.REFUNDED or outcome.shipping is None:
        return None
    offered = offered_shipping(order["shipping_offered"]) if "shipping_offered" in keys else None
    if offered is None or outcome.shipping in offered or (outcome.shipping == 0 and not offered):
        return None
    choices = ", ".join(str(amount) for amount in sorted(offered)) or "none"
    return (
        f"charges {_money(outcome.shipping, outcome.currency)} for shipping, "
        f"but the shop offered {choices}"
    )


class EventResult(StrEnum):
    """What applying Stripe's word did (the webhook answers with it)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"  # a late or repeated outcome; the order stays put
    IGNORED = "ignored"  # not an event, or not an order, of ours
    FLAGGED = "flagged"  # recorded; the order is flagged for the shopkeeper


def refusal(order: Mapping[str, Any], outcome: EventOutcome, source: str) -> str | None:
    """The flag's reason when Stripe's word does not fit the order, else None."""
    reason = mismatch(order, outcome)
    if reason is None:
        return None
    return f"{source}: {outcome.status.value} refused: {reason}"


def partial_result(raised: bool) -> tuple[EventResult, str | None, bool]:
    """The result of recording a partial refund: applied if the refunded total grew."""
    return (EventResult.APPLIED if raised else EventResult.UNCHANGED), None, raised


def result_of(move: Move | None) -> tuple[EventResult, str | None, bool]:
    """The result of a transition attempt: the result, the flag's reason, whether it moved."""
    if move is None:
        return EventResult.UNCHANGED, None, False
    if move.flag is not None:
        return EventResult.FLAGGED, move.flag, True
    return EventResult.APPLIED, None, True
