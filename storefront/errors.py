"""Errors the shop shows to shoppers, each with its HTTP status and a safe message."""

from __future__ import annotations


class ShopError(Exception):
    """An error with a message fit for a shopper's eyes."""

    status_code = 400
    title = "Something went wrong"
    message = "Please try again."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        if message:
            self.message = message


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
