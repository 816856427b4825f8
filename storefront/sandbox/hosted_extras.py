"""The payment page's address, shipping rate and promotion code forms (plain POSTs)."""

from __future__ import annotations

from quart import Response, redirect, request, url_for

from .commerce import check_code
from .countries import country_choices
from .hosted import PageResult, pages, pay_page, posting_to_open_session, sandbox
from .resources import AppliedDiscount, CheckoutSession

ADDRESS_INCOMPLETE = "Your address is incomplete."
NAME_INCOMPLETE = "Your name is incomplete."
COUNTRY_NOT_ALLOWED = "We cannot ship to this country."


def back_to_page(record: CheckoutSession) -> PageResult:
    """303 back to the payment page, which shows the new totals."""
    return redirect(url_for("sandbox_pages.pay", session_id=record.id), 303)


@pages.post("/c/pay/<session_id>/address")
@posting_to_open_session
async def collect_address(record: CheckoutSession) -> PageResult:
    """Keep a shipping (or, for tax only, billing) address and the chosen shipping rate."""
    form = await request.form
    fields = ("name", "line1", "line2", "city", "postal_code", "country", "shipping_rate")
    values = {name: form.get(name, "").strip() for name in fields}
    shipping = record.terms.shipping_countries is not None
    wants_address = shipping or record.terms.automatic_tax
    error = None
    if wants_address:
        required = ("line1", "city", "postal_code", "country") if shipping else ("country",)
        if shipping and not values["name"]:
            error = NAME_INCOMPLETE
        elif any(not values[name] for name in required):
            error = ADDRESS_INCOMPLETE
        elif values["country"] not in dict(country_choices(record)):
            error = COUNTRY_NOT_ALLOWED
    rate_ids = [rate.id for rate in record.terms.shipping_options]
    if values["shipping_rate"] and values["shipping_rate"] not in rate_ids:
        error = error or "Choose one of the shipping rates offered."
    if error is not None:
        return await pay_page(record, error=error, form="address", values=values, status=400)
    address = None
    if wants_address:
        address = {
            "city": values["city"] or None,
            "country": values["country"],
            "line1": values["line1"] or None,
            "line2": values["line2"] or None,
            "postal_code": values["postal_code"] or None,
            "state": None,
        }
    record.collect_address(values["name"], address, values["shipping_rate"], shipping)
    return back_to_page(record)


@pages.post("/c/pay/<session_id>/promotion_code")
@posting_to_open_session
async def enter_promotion_code(record: CheckoutSession) -> PageResult:
    """Apply the code the shopper typed, or remove the applied one."""
    if not record.terms.allow_promotion_codes:
        return await pay_page(
            record, error="This session does not take promotion codes.", form="promo", status=400
        )
    form = await request.form
    if form.get("action") == "remove":
        record.apply_discount(None)
        return back_to_page(record)
    code = form.get("code", "").strip()
    state = sandbox()
    found = check_code(code, record.currency, state.now(), state.catalog) if code else None
    if found is None or isinstance(found, str):
        message = found or "Enter a promotion code."
        return await pay_page(
            record, error=message, form="promo", values={"code": code}, status=400
        )
    record.apply_discount(AppliedDiscount(found.coupon, found, record.id, state.now()))
    return back_to_page(record)


@pages.after_request
async def never_cache_payment_pages(response: Response) -> Response:
    """Back after paying must refetch the page (now closed), not show the filled form."""
    if request.path.startswith("/c/pay/"):
        response.headers["Cache-Control"] = "no-store"
    return response
