-- Outbox delivery attempts and the counts of calls to external providers
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE TABLE external_requests (
    provider TEXT NOT NULL,
    result TEXT NOT NULL,
    status TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, result, status)
);
