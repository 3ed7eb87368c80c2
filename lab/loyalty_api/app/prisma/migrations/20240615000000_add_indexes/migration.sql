-- Indexes for the worker's queue scan and the balance lookups
CREATE INDEX outbox_status_next_attempt ON outbox (status, next_attempt_at);
CREATE INDEX purchases_customer ON purchases (customer_id);
