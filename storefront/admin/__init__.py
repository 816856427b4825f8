"""The shopkeeper's back office under /admin: orders, refunds, products, the webhook log."""
