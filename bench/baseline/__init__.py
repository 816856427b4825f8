"""Baselines the shop is measured against: the tutorial's Flask app and a bare ASGI app."""
