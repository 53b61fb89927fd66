-- Payments and the double-entry ledger (schema "payment").
-- Owned by the migration (master) role; the payment service role gets SELECT/INSERT/UPDATE on payments and
-- SELECT/INSERT on the ledger (append-only), granted by the migrate job.

CREATE TABLE payment.payments (
    id                   uuid        PRIMARY KEY,
    merchant_id          text        NOT NULL CHECK (merchant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    amount_minor         bigint      NOT NULL CHECK (amount_minor > 0),
    currency             char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status               text        NOT NULL CHECK (status IN ('authorized', 'captured')),
    payment_method_token text        NOT NULL CHECK (payment_method_token ~ '^tok_[A-Za-z0-9_]{8,64}$'),
    description          text        CHECK (char_length(description) <= 255),
    idempotency_key      text        NOT NULL,
    request_hash         text        NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    captured_at          timestamptz,
    -- The durable idempotency backstop: Redis holds keys for 24 h, this holds them forever.
    CONSTRAINT payments_idempotency_key UNIQUE (merchant_id, idempotency_key),
    CONSTRAINT payments_captured_at CHECK ((status = 'captured') = (captured_at IS NOT NULL))
);

CREATE TABLE payment.ledger_transactions (
    id         uuid        PRIMARY KEY,
    payment_id uuid        NOT NULL REFERENCES payment.payments (id),
    kind       text        NOT NULL CHECK (kind IN ('authorization', 'capture')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_transactions_one_per_kind UNIQUE (payment_id, kind)
);

CREATE TABLE payment.ledger_entries (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id uuid        NOT NULL REFERENCES payment.ledger_transactions (id),
    account        text        NOT NULL CHECK (account ~ '^[a-z_]+(:[A-Za-z0-9_-]+)?$'),
    direction      text        NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount_minor   bigint      NOT NULL CHECK (amount_minor > 0),
    currency       char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ledger_entries_transaction ON payment.ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account ON payment.ledger_entries (account, created_at);

-- Balance check, run at COMMIT (deferred): every ledger transaction touched in the database transaction has at least
-- two entries and, per currency, debits equal to credits. A database transaction that leaves any ledger transaction
-- unbalanced (or empty) fails as a whole, payment row update included.
CREATE FUNCTION payment.check_ledger_transaction_balanced() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    tx uuid;
    entry_count integer;
    unbalanced record;
BEGIN
    IF TG_TABLE_NAME = 'ledger_transactions' THEN
        tx := NEW.id;
    ELSE
        tx := NEW.transaction_id;
    END IF;
    SELECT count(*) INTO entry_count FROM payment.ledger_entries WHERE transaction_id = tx;
    IF entry_count < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % entries; at least 2 are required', tx, entry_count
            USING ERRCODE = 'check_violation';
    END IF;
    FOR unbalanced IN
        SELECT currency,
               sum(amount_minor) FILTER (WHERE direction = 'debit')  AS debits,
               sum(amount_minor) FILTER (WHERE direction = 'credit') AS credits
          FROM payment.ledger_entries
         WHERE transaction_id = tx
         GROUP BY currency
        HAVING coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit'), 0)
            <> coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit'), 0)
    LOOP
        RAISE EXCEPTION 'ledger transaction % is unbalanced in %: debits %, credits %',
            tx, unbalanced.currency, coalesce(unbalanced.debits, 0), coalesce(unbalanced.credits, 0)
            USING ERRCODE = 'check_violation';
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced
    AFTER INSERT ON payment.ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION payment.check_ledger_transaction_balanced();

CREATE CONSTRAINT TRIGGER ledger_transactions_balanced
    AFTER INSERT ON payment.ledger_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION payment.check_ledger_transaction_balanced();

-- The ledger is append-only: corrections are new, compensating transactions, never edits.
CREATE FUNCTION payment.reject_ledger_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON payment.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION payment.reject_ledger_change();

CREATE TRIGGER ledger_transactions_append_only
    BEFORE UPDATE OR DELETE ON payment.ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION payment.reject_ledger_change();

CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON payment.ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION payment.reject_ledger_change();

CREATE TRIGGER ledger_transactions_no_truncate
    BEFORE TRUNCATE ON payment.ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION payment.reject_ledger_change();

-- A payment's identity and amount never change after authorization; its status only moves forward.
CREATE FUNCTION payment.check_payment_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.merchant_id <> OLD.merchant_id OR NEW.amount_minor <> OLD.amount_minor
       OR NEW.currency <> OLD.currency OR NEW.payment_method_token <> OLD.payment_method_token
       OR NEW.idempotency_key <> OLD.idempotency_key OR NEW.request_hash <> OLD.request_hash
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'payment % : immutable columns cannot change', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (OLD.status = 'authorized' AND NEW.status = 'captured') THEN
        RAISE EXCEPTION 'payment % : status cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER payments_update_rules
    BEFORE UPDATE ON payment.payments
    FOR EACH ROW EXECUTE FUNCTION payment.check_payment_update();
