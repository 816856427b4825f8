"""Products (``prod_``) of the account's catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..objects import new_id


@dataclass
class Product:
    """A saved product; ``default_price`` names one of its prices."""

    name: str
    created: int
    description: str | None = None
    images: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    active: bool = True
    shippable: bool | None = None
    url: str | None = None
    default_price: str | None = None
    id: str = field(default_factory=lambda: new_id("prod_", 14))

    def to_stripe(self, default_price: dict[str, Any] | None = None) -> dict[str, Any]:
        """The complete ``product``, its default price expanded when given."""
        return {
            "id": self.id,
            "object": "product",
            "active": self.active,
            "created": self.created,
            "default_price": default_price if default_price is not None else self.default_price,
            "description": self.description,
            "images": list(self.images),
            "livemode": False,
            "marketing_features": [],
            "metadata": dict(self.metadata),
            "name": self.name,
            "package_dimensions": None,
            "shippable": self.shippable,
            "statement_descriptor": None,
            "tax_code": None,
            "type": "service",
            "unit_label": None,
            "updated": self.created,
            "url": self.url,
        }
