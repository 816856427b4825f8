"""The parts of a session's JSON that its shipping, discount and tax decide."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tax import rate_for, tax_entry

if TYPE_CHECKING:
    from ..pricing import PricedLine
    from .session import CheckoutSession


def line_taxes(record: CheckoutSession, priced: PricedLine) -> list[dict[str, Any]]:
    """A line's ``taxes``: one entry at the country's rate, none where no tax is collected."""
    rate = rate_for(record.tax_country) if record.terms.automatic_tax else None
    if rate is None:
        return []
    return [tax_entry(rate, priced.inclusive, priced.tax, priced.taxable)]


def line_discounts(record: CheckoutSession, priced: PricedLine) -> list[dict[str, Any]]:
    """A line's ``discounts``: its share of the session's discount."""
    if record.discount is None:
        return []
    return [{"amount": priced.discount, "discount": record.discount.to_stripe()}]


def line_items_json(
    record: CheckoutSession, include: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Every ``item`` with its amounts; ``discounts``/``taxes`` only when expanded."""
    totals = record.totals()
    return [
        line.to_stripe(
            priced,
            line_discounts(record, priced) if "discounts" in include else None,
            line_taxes(record, priced) if "taxes" in include else None,
        )
        for line, priced in zip(record.line_items, totals.lines, strict=True)
    ]


def _breakdown(record: CheckoutSession) -> dict[str, Any]:
    totals = record.totals()
    discounts = []
    if record.discount is not None:
        discounts.append({"amount": totals.discount, "discount": record.discount.to_stripe()})
    taxes: list[dict[str, Any]] = []
    rate = rate_for(record.tax_country) if record.terms.automatic_tax else None
    if rate is not None:
        # One entry per rate object: exclusive and inclusive amounts are separate rates.
        for inclusive in (False, True):
            parts = [p for p in (*totals.lines, totals.shipping) if p.inclusive is inclusive]
            if parts and any(p.subtotal for p in parts):
                amount = sum(p.tax for p in parts)
                taxable = sum(p.taxable for p in parts)
                taxes.append(tax_entry(rate, inclusive, amount, taxable))
    return {"discounts": discounts, "taxes": taxes}


def _automatic_tax(record: CheckoutSession) -> dict[str, Any]:
    if not record.terms.automatic_tax:
        return {"enabled": False, "liability": None, "provider": None, "status": None}
    return {
        "enabled": True,
        "liability": {"type": "self"},
        "provider": "stripe",
        "status": "complete" if record.tax_country else "requires_location_inputs",
    }


def _shipping_cost(record: CheckoutSession) -> dict[str, Any] | None:
    rate = record.shipping_rate
    if rate is None:
        return None
    shipping = record.totals().shipping
    taxes = []
    country_rate = rate_for(record.tax_country) if record.terms.automatic_tax else None
    if country_rate is not None and shipping.subtotal:
        taxes.append(tax_entry(country_rate, shipping.inclusive, shipping.tax, shipping.taxable))
    return {
        "amount_subtotal": shipping.subtotal,
        "amount_tax": shipping.tax,
        "amount_total": shipping.total,
        "shipping_rate": rate.id,
        "taxes": taxes,
    }


def commerce_fields(record: CheckoutSession, expand: frozenset[str] | set[str]) -> dict[str, Any]:
    """The session fields that shipping, discounts and tax fill."""
    totals = record.totals()
    terms = record.terms
    total_details: dict[str, Any] = {
        "amount_discount": totals.discount,
        "amount_shipping": totals.shipping.subtotal,
        "amount_tax": totals.tax,
    }
    if "total_details.breakdown" in expand:
        total_details["breakdown"] = _breakdown(record)
    collected = None
    if record.shipping_details is not None:
        collected = {
            "business_name": None,
            "individual_name": None,
            "shipping_details": record.shipping_details,
        }
    return {
        "allow_promotion_codes": terms.allow_promotion_codes,
        "amount_subtotal": totals.subtotal,
        "amount_total": totals.total,
        "automatic_tax": _automatic_tax(record),
        "collected_information": collected,
        "discounts": [record.discount.reference()] if record.discount else [],
        "shipping_address_collection": (
            {"allowed_countries": list(terms.shipping_countries)}
            if terms.shipping_countries is not None
            else None
        ),
        "shipping_cost": _shipping_cost(record),
        "shipping_options": [
            {"shipping_amount": rate.amount, "shipping_rate": rate.id}
            for rate in terms.shipping_options
        ],
        "total_details": total_details,
    }
