-- The whole schema of the shop, readable in one place. Databases are built by
-- the migrations in storefront/migrations/ (`storefront init-db`, `storefront
-- migrate`); tests hold this file to what they build, and the status CHECK to
-- storefront.orders.OrderStatus.
-- Money is in integer minor units; currency is a lowercase ISO 4217 code.

CREATE TABLE IF NOT EXISTS products (
    id          INTEGER PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE
                CHECK (length(slug) BETWEEN 1 AND 64 AND slug NOT GLOB '*[^a-z0-9-]*'),
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description TEXT    NOT NULL DEFAULT '',
    unit_amount INTEGER NOT NULL CHECK (unit_amount > 0),
    currency    TEXT    NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    image       TEXT,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- Units on hand (NULL: unlimited). Payment converts a reservation into a sale
    -- and takes its units off here.
    stock       INTEGER CHECK (stock >= 0),
    -- Units held by open checkouts: always the sum of the active order_lines'
    -- quantities; stock left = stock - reserved, changed by conditional updates only.
    reserved    INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    -- Physical goods need a shipping address and a shipping rate at checkout.
    kind        TEXT    NOT NULL DEFAULT 'digital' CHECK (kind IN ('physical', 'digital'))
);

CREATE TABLE IF NOT EXISTS orders (
    id                INTEGER PRIMARY KEY,
    token             TEXT    NOT NULL UNIQUE,
    product_id        INTEGER NOT NULL REFERENCES products (id),
    quantity          INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    amount_total      INTEGER NOT NULL CHECK (amount_total > 0),
    currency          TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'paid', 'failed',
                                        'expired', 'refunded', 'aborted')),
    stripe_session_id TEXT    UNIQUE,
    -- A nonce carried by the Buy form: a second click of the same form finds
    -- this order instead of starting another checkout.
    checkout_attempt  TEXT    UNIQUE,
    payment_intent    TEXT,
    customer_email    TEXT,
    -- When the Checkout Session stops taking payments (unix seconds, as sent to
    -- Stripe); NULL for orders older than the setting: Stripe's default of 24 h.
    expires_at        INTEGER,
    -- Set when Stripe's word and ours disagree (a payment for an aborted order,
    -- an event whose amount or session does not match): the shopkeeper looks.
    -- The first reason is kept; later ones go to the log.
    flag_reason       TEXT,
    flagged_at        TEXT,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The short number shoppers quote (the token stays the receipt's URL key).
    order_number      TEXT,
    -- What we asked for (the lines' sum), then what Stripe says was paid:
    -- amount_paid = amount_subtotal - amount_discount + amount_shipping + amount_tax.
    amount_subtotal   INTEGER,
    amount_discount   INTEGER,
    amount_shipping   INTEGER,
    amount_tax        INTEGER,
    amount_paid       INTEGER,
    shipping_name     TEXT,
    -- Stripe's address object as JSON.
    shipping_address  TEXT,
    -- The cart this order was checked out from: emptied once the order is paid.
    cart_id           INTEGER,
    -- Refunded so far (minor units): a partial refund leaves the order paid.
    amount_refunded   INTEGER NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    -- Fulfilment is tracked apart from payment.
    fulfilment        TEXT    NOT NULL DEFAULT 'unfulfilled'
                      CHECK (fulfilment IN ('unfulfilled', 'shipped', 'delivered')),
    tracking_note     TEXT,
    fulfilled_at      TEXT,
    -- The shipping amounts (minor units, comma-separated) offered for the
    -- order's session: '' none; NULL unknown (orders from before revision 0005).
    -- A paid shipping amount must be one of them, or the order is flagged.
    shipping_offered  TEXT    DEFAULT ''
);

CREATE INDEX IF NOT EXISTS orders_open_by_age ON orders (status, created_at)
    WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS orders_flagged ON orders (flagged_at) WHERE flagged_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_by_payment_intent ON orders (payment_intent)
    WHERE payment_intent IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_number ON orders (order_number);

-- One row per product in an order, priced from our database when the checkout
-- started. Its reservation holds stock while the session is open: released on
-- expiry, cancel, failure or abort; converted on payment; 'none' when unlimited.
CREATE TABLE IF NOT EXISTS order_lines (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    product_id      INTEGER NOT NULL REFERENCES products (id),
    name            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    unit_amount     INTEGER NOT NULL CHECK (unit_amount > 0),
    reservation     TEXT    NOT NULL DEFAULT 'none'
                    CHECK (reservation IN ('none', 'active', 'released', 'converted')),
    -- What Stripe's line item says was paid for this line, once the order is:
    -- amount_total = unit_amount * quantity - amount_discount + exclusive tax.
    amount_discount INTEGER,
    amount_tax      INTEGER,
    amount_total    INTEGER,
    UNIQUE (order_id, product_id)
);
CREATE INDEX IF NOT EXISTS order_lines_active ON order_lines (order_id)
    WHERE reservation = 'active';

-- Server-side carts, keyed by a random cookie; abandoned ones are deleted
-- after STOREFRONT_CART_MAX_AGE.
CREATE TABLE IF NOT EXISTS carts (
    id         INTEGER PRIMARY KEY,
    token      TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS carts_by_age ON carts (updated_at);

CREATE TABLE IF NOT EXISTS cart_items (
    cart_id    INTEGER NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    added_at   TEXT    NOT NULL,
    PRIMARY KEY (cart_id, product_id)
);

-- The timeline: one row per applied transition, never two for the same status.
CREATE TABLE IF NOT EXISTS order_events (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    status          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    stripe_event_id TEXT,
    -- Why, when the move needs explaining (a flagged recovery, a missing session).
    note            TEXT,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (order_id, status)
);

-- Webhook events already applied; a second delivery of the same id is a no-op.
CREATE TABLE IF NOT EXISTS webhook_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The order the event touched and what it did (applied, flagged, …).
    order_id    INTEGER REFERENCES orders (id),
    result      TEXT
);
CREATE INDEX IF NOT EXISTS webhook_events_by_order ON webhook_events (order_id)
    WHERE order_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_events_by_time ON webhook_events (received_at);
CREATE INDEX IF NOT EXISTS orders_by_email ON orders (customer_email);

-- Back-office accounts (`storefront add-user`); argon2 hashes only.
CREATE TABLE IF NOT EXISTS staff_users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Server-side sessions: the cookie carries a random id whose SHA-256 is the key.
CREATE TABLE IF NOT EXISTS staff_sessions (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES staff_users (id),
    csrf_token TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Disputes as Stripe reports them (charge.dispute.*), one row per dispute.
CREATE TABLE IF NOT EXISTS disputes (
    id             TEXT    PRIMARY KEY,
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    charge         TEXT,
    payment_intent TEXT,
    amount         INTEGER NOT NULL,
    currency       TEXT    NOT NULL,
    reason         TEXT,
    status         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Emails to send, written in the transaction that causes them; a background
-- task sends and marks them. dedupe_key keeps one email per cause.
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER REFERENCES orders (id),
    kind            TEXT    NOT NULL,
    detail          TEXT,
    dedupe_key      TEXT    NOT NULL UNIQUE,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         TEXT,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (next_attempt_at) WHERE sent_at IS NULL;
