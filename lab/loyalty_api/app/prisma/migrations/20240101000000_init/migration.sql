-- Loyalty API: customers, their purchases, the outbox of merchant webhooks
CREATE TABLE customers (
    id SERIAL PRIMARY KEY,
    user_token TEXT UNIQUE NOT NULL,
    phone TEXT NOT NULL,
    balance INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE purchases (
    id SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    outlet_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE outbox (
    id SERIAL PRIMARY KEY,
    provider TEXT NOT NULL DEFAULT 'merchant_webhook',
    url TEXT NOT NULL,
    payload JSONB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
