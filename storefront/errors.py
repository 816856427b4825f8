"""Errors the shop shows to shoppers, each with its HTTP status and a safe message."""

from __future__ import annotations

import math


class ShopError(Exception):
    """An error with a message fit for a shopper's eyes."""

    status_code = 400
    title = "Something went wrong"
    message = "Please try again."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        if message:
            self.message = message

    def headers(self) -> dict[str, str]:
        """Extra response headers this error answers with."""
        return {}


class NotFound(ShopError):
    status_code = 404
    title = "Not found"
    message = "We could not find that page."


class ProductNotFound(NotFound):
    message = "We don't sell that product."


class ProductUnavailable(ShopError):
    status_code = 409
    title = "Not available"
    message = "Sorry, this product is not available right now."


class OrderNotFound(NotFound):
    message = "We could not find that order."


class CheckoutUnavailable(ShopError):
    status_code = 503
    title = "Payments unavailable"
    message = "We could not reach our payment provider. Nothing was charged; please try again."


class CrossSiteRequest(ShopError):
    status_code = 403
    title = "Request refused"
    message = "This form was sent from another site. Please buy from our own pages."


class MethodNotAllowed(ShopError):
    status_code = 405
    title = "Use the Buy button"
    message = "Buying starts with the Buy button on the product page."


class TooManyCheckouts(ShopError):
    status_code = 429
    title = "Please wait a moment"

    def __init__(self, retry_after: int):
        minutes = "a minute" if retry_after <= 60 else f"{math.ceil(retry_after / 60)} minutes"
        super().__init__(
            f"You have started many checkouts in a short time. Nothing was charged; "
            f"please try again in {minutes}."
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Tell clients (and well-behaved scripts) when to come back."""
        return {"Retry-After": str(self.retry_after)}


class BadQuantity(ShopError):
    status_code = 400
    title = "Check the quantity"


class SoldOut(ShopError):
    status_code = 409
    title = "Not enough in stock"

    def __init__(self, short: tuple[tuple[str, int], ...]):
        parts = [
            f"{name} is sold out" if left == 0 else f"only {left} of {name} left"
            for name, left in short
        ]
        text = "; ".join(parts)
        super().__init__(f"Sorry, {text}. Nothing was reserved or charged.")


class CartProblem(ShopError):
    status_code = 409
    title = "Your cart cannot be checked out"
