-- Payment events received by the notification service (schema "notification").
-- The notification service role gets SELECT/INSERT (append-only), granted by the migrate job.

CREATE TABLE notification.events (
    event_id    uuid        PRIMARY KEY,
    event_type  text        NOT NULL CHECK (event_type ~ '^payment\.[a-z_]{1,40}$'),
    payment_id  uuid        NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_payment ON notification.events (payment_id, occurred_at);
