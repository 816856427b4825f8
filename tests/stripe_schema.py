"""Validate Stripe JSON bodies against the pinned API version's schemas.

Two sources, in this order of authority:

1. The installed SDK's declared types (``typing.get_type_hints`` on ``stripe.checkout.Session``,
   its nested classes, ``stripe.Charge``...). stripe-python is generated for one API version
   (``stripe.api_version``), so its types are that version's shape: a non-Optional attribute
   is a field that is always sent and never null; ``Literal[...]`` (even in ``Literal | str``,
   whose ``str`` only keeps older SDKs working against newer versions) lists the values this
   version can send; ``ExpandableField[T]`` is an id string or the object ``T``.
2. Stripe's published OpenAPI spec (``tests/data/stripe-openapi/``). It is an older version
   than the SDK's, so it only fills in what the types leave open: which Optional fields are
   always present (its ``required`` lists), enums where the SDK says plain ``str``, and
   fields that may be absent but never null. Where the two disagree the SDK wins.

Whether an Optional field may be left out is read from the spec: a nullable property is
always sent (null when it does not apply); a non-nullable one that is not required is sent
only when it applies (``line_items`` on a session until expanded). Where the spec copy holds
no schema (most nested objects) or the field is newer than the spec, neither source says, so
the field may be absent but is type-checked when present. ``MAY_BE_ABSENT`` names the fields
Stripe documents as left out although the spec calls them nullable.
"""

from __future__ import annotations

import ast
import decimal
import functools
import importlib
import inspect
import json
import sys
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union

import stripe
from stripe._list_object import ListObject
from stripe._stripe_object import StripeObject, UntypedStripeObject

SPEC_DIR = Path(__file__).resolve().parent / "data" / "stripe-openapi"
SPEC_FILE = SPEC_DIR / "checkout-schemas.json"

# Since 2022-11-15 a charge's refunds are only included when expanded.
MAY_BE_ABSENT = {("charge", "refunds")}

_NOT_THERE = object()


@functools.cache
def spec_schemas() -> dict[str, Any]:
    """The component schemas of the spec copy kept as test data."""
    return json.loads(SPEC_FILE.read_text())["components"]["schemas"]


class _Names(Mapping[str, Any]):
    """Names an SDK annotation may use: nested classes, the module's imports, then ``stripe``."""

    def __init__(self, cls: type) -> None:
        self.scopes: list[Mapping[str, Any]] = []
        module = sys.modules[cls.__module__]
        # The enclosing classes, innermost first (``Session.AutomaticTax.Liability``...).
        owner: Any = module
        chain = []
        for part in cls.__qualname__.split("."):
            owner = getattr(owner, part)
            chain.append(owner)
        self.scopes.extend(vars(c) for c in reversed(chain))
        self.scopes.append(vars(module))
        self.scopes.append(_type_checking_imports(module.__name__))

    def __getitem__(self, name: str) -> Any:
        for scope in self.scopes:
            if name in scope:
                return scope[name]
        return getattr(stripe, name)

    def __iter__(self) -> Iterator[str]:
        return iter({k for scope in self.scopes for k in scope})

    def __len__(self) -> int:
        return len(set(self))


@functools.cache
def _type_checking_imports(module_name: str) -> dict[str, Any]:
    """The names an SDK module imports only for type checkers (``if TYPE_CHECKING:``)."""
    tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stripe"):
            source = importlib.import_module(node.module)
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(source, alias.name)
    return names


@functools.cache
def fields_of(cls: type) -> dict[str, Any]:
    """The declared fields of an SDK class, resolved (ClassVars and private names left out)."""
    module_globals = dict(vars(sys.modules[cls.__module__]))
    hints = typing.get_type_hints(cls, globalns=module_globals, localns=_Names(cls))
    return {
        name: hint
        for name, hint in hints.items()
        if not name.startswith("_") and typing.get_origin(hint) is not typing.ClassVar
    }


def _is_optional(hint: Any) -> bool:
    return _is_union(hint) and type(None) in typing.get_args(hint)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _without_none(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007


def _literal_values(hint: Any) -> list[Any] | None:
    """The closed value list of ``Literal[...]`` or ``Literal[...] | str``, else None."""
    if typing.get_origin(hint) is Literal:
        return list(typing.get_args(hint))
    if _is_union(hint):
        literals = [a for a in typing.get_args(hint) if typing.get_origin(a) is Literal]
        if literals and all(
            typing.get_origin(a) is Literal or a is str for a in typing.get_args(hint)
        ):
            return [v for lit in literals for v in typing.get_args(lit)]
    return None


class Validator:
    """Collects every way one body differs from its SDK class (and the spec)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def check(self, body: Any, cls: type, path: str = "$") -> list[str]:
        """Validate ``body`` as an object of ``cls``; return the problems found."""
        self._object(body, cls, path, spec_schemas().get(getattr(cls, "OBJECT_NAME", "")))
        return self.errors

    def fail(self, path: str, message: str) -> None:
        """Record one problem at ``path``."""
        self.errors.append(f"{path}: {message}")

    def _object(self, body: Any, cls: type, path: str, schema: dict[str, Any] | None) -> None:
        if not isinstance(body, dict):
            self.fail(path, f"expected an object ({cls.__qualname__}), got {body!r:.60}")
            return
        declared = fields_of(cls)
        props = (schema or {}).get("properties", {})
        required = set((schema or {}).get("required", []))
        kind = getattr(cls, "OBJECT_NAME", cls.__qualname__)
        for name in body:
            if name not in declared:
                self.fail(f"{path}.{name}", f"not a field of {cls.__qualname__} in this version")
        for name, hint in declared.items():
            value = body.get(name, _NOT_THERE)
            where = f"{path}.{name}"
            prop = props.get(name, {})
            if value is _NOT_THERE:
                if not _is_optional(hint) or name in required:
                    self.fail(where, "required field missing")
                elif prop.get("nullable") and (kind, name) not in MAY_BE_ABSENT:
                    self.fail(where, "missing (Stripe sends it, null when it does not apply)")
                continue
            if value is None:
                if not _is_optional(hint):
                    self.fail(where, "must not be null")
                elif prop and not prop.get("nullable"):
                    self.fail(where, "may be absent but never null (spec)")
                continue
            self._value(value, _without_none(hint) if _is_optional(hint) else hint, where, prop)

    def _value(self, value: Any, hint: Any, path: str, prop: dict[str, Any]) -> None:
        literal = _literal_values(hint)
        if literal is not None:
            if value not in literal:
                self.fail(path, f"{value!r} is not one of {literal}")
            return
        if _is_union(hint):
            # ExpandableField[T] = Union[str, T]: an id, or the expanded object.
            options = typing.get_args(hint)
            if isinstance(value, str) and str in options:
                return
            objects = [a for a in options if inspect.isclass(a) and issubclass(a, StripeObject)]
            if objects:
                self._value(value, objects[0], path, prop)
            else:
                self.fail(path, f"{value!r:.60} matches none of {hint}")
            return
        origin = typing.get_origin(hint) or hint
        if origin in (list, typing.List):  # noqa: UP006
            if not isinstance(value, list):
                self.fail(path, f"expected a list, got {value!r:.60}")
                return
            (item,) = typing.get_args(hint) or (Any,)
            for index, element in enumerate(value):
                self._value(element, item, f"{path}[{index}]", prop.get("items", {}))
            return
        if origin is ListObject:
            self._list(value, typing.get_args(hint)[0], path)
            return
        if origin in (dict, UntypedStripeObject) or hint is UntypedStripeObject:
            if not isinstance(value, dict):
                self.fail(path, f"expected a hash, got {value!r:.60}")
            elif typing.get_args(hint) == (str,):
                # metadata and the like: string values only.
                for key, item in value.items():
                    if not isinstance(item, str):
                        self.fail(f"{path}.{key}", f"expected str, got {item!r:.60}")
            return
        if inspect.isclass(origin) and issubclass(origin, StripeObject):
            self._object(value, origin, path, self._schema_for(origin, prop))
            return
        self._scalar(value, origin, path, prop)

    def _list(self, value: Any, item: Any, path: str) -> None:
        if not isinstance(value, dict) or value.get("object") != "list":
            self.fail(path, f"expected a list object, got {value!r:.60}")
            return
        for key, kind in (("data", list), ("has_more", bool), ("url", str)):
            if not isinstance(value.get(key), kind):
                self.fail(f"{path}.{key}", f"expected {kind.__name__}")
        for index, element in enumerate(value.get("data") or []):
            self._value(element, item, f"{path}.data[{index}]", {})

    def _scalar(self, value: Any, kind: Any, path: str, prop: dict[str, Any]) -> None:
        if kind is Any:
            return
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind is decimal.Decimal:
            # Decimals travel as strings (format "decimal" in the spec).
            ok = isinstance(value, str)
        elif kind is str:
            ok = isinstance(value, str)
            if ok and prop.get("enum") and value not in prop["enum"]:
                self.fail(path, f"{value!r} is not one of {prop['enum']} (spec)")
        else:
            self.fail(path, f"no rule for type {kind!r}")
            return
        if not ok:
            self.fail(path, f"expected {getattr(kind, '__name__', kind)}, got {value!r:.60}")

    @staticmethod
    def _schema_for(cls: type, prop: dict[str, Any]) -> dict[str, Any] | None:
        """The spec schema of a nested object: its own name, or the parent property's $ref."""
        schemas = spec_schemas()
        name = getattr(cls, "OBJECT_NAME", None)
        if name in schemas:
            return schemas[name]
        refs = [prop.get("$ref")] + [o.get("$ref") for o in prop.get("anyOf", [])]
        for ref in refs:
            if ref and ref.rsplit("/", 1)[-1] in schemas:
                return schemas[ref.rsplit("/", 1)[-1]]
        return None


def problems(body: Any, cls: type) -> list[str]:
    """Every way ``body`` is not a valid ``cls`` of the pinned version."""
    return Validator().check(body, cls)


RESOURCES: dict[str, type] = {
    "checkout.session": stripe.checkout.Session,
    "item": stripe.LineItem,
    "price": stripe.Price,
    "product": stripe.Product,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "dispute": stripe.Dispute,
    "balance_transaction": stripe.BalanceTransaction,
    "payment_intent": stripe.PaymentIntent,
    "event": stripe.Event,
    "webhook_endpoint": stripe.WebhookEndpoint,
    "shipping_rate": stripe.ShippingRate,
    "coupon": stripe.Coupon,
    "promotion_code": stripe.PromotionCode,
}


def problems_any(body: Any) -> list[str]:
    """Validate a body by its ``object`` (lists element by element, events with their object)."""
    if isinstance(body, dict) and "error" in body and "object" not in body:
        return error_problems(body)
    kind = body.get("object") if isinstance(body, dict) else None
    if kind == "list":
        found = [] if isinstance(body.get("url"), str) else ["$.url: expected str"]
        for index, element in enumerate(body.get("data", [])):
            found += [f"data[{index}]{p[1:]}" for p in problems_any(element)]
        return found
    if kind not in RESOURCES:
        return [f"$: unknown object type {kind!r}"]
    found = problems(body, RESOURCES[kind])
    if kind == "event":
        inner = body.get("data", {}).get("object")
        found += [f"$.data.object{p[1:]}" for p in problems_any(inner)]
    return found


def error_problems(body: Any) -> list[str]:
    """Validate an error answer against the spec's ``error``/``api_errors`` schemas."""
    schemas = spec_schemas()
    validator = Validator()
    error = body.get("error")
    if set(body) != {"error"} or not isinstance(error, dict):
        return ["$: an error body is exactly {'error': {...}}"]
    schema = schemas["api_errors"]
    for name in error:
        if name not in schema["properties"]:
            validator.fail(f"$.error.{name}", "not a field of api_errors")
    for name in schema.get("required", []):
        if name not in error:
            validator.fail(f"$.error.{name}", "required field missing")
    for name, prop in schema["properties"].items():
        if name in error and error[name] is not None and prop.get("type") == "string":
            validator._scalar(error[name], str, f"$.error.{name}", prop)
    return validator.errors
