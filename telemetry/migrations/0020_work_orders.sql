-- Work orders from maintenance alerts (docs/work_orders.md): one order per crew visit's scope
-- (a pole, a circuit, a district), the alerts it covers, every step with who/when/note, the
-- parts swapped and the photos taken, and the idempotency keys of the crews' replayed requests.

CREATE TABLE work_orders (
    work_order_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The kind of the alert that opened it (lampFailure, circuit_outage, ...).
    kind          text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    scope         text NOT NULL CHECK (scope IN ('light', 'pole', 'circuit', 'district')),
    -- pole:P-MED-00001, circuit:C-001, district:medina, light:L-MED-00001 (not in the register).
    scope_key     text NOT NULL CHECK (length(scope_key) BETWEEN 3 AND 200),
    -- The register's asset the crew goes to (the pole, the luminaire, the circuit), if any.
    asset_id      text REFERENCES equipment_assets (asset_id) ON DELETE SET NULL,
    device_id     text,
    circuit       text,
    district      text,
    crew          text,
    assignee      text CHECK (length(assignee) BETWEEN 1 AND 200),
    state         text NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'assigned', 'in_progress', 'done', 'cancelled')),
    summary       text NOT NULL DEFAULT '',
    lat           double precision CHECK (lat BETWEEN -90 AND 90),
    lon           double precision CHECK (lon BETWEEN -180 AND 180),
    -- The first fault reading of its first alert (device time), and when Rasd wrote it.
    opened_at     timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    assigned_at   timestamptz,
    started_at    timestamptz,
    done_at       timestamptz,
    cancelled_at  timestamptz,
    crew_minutes  integer CHECK (crew_minutes BETWEEN 0 AND 100000),
    reopen_count  integer NOT NULL DEFAULT 0,
    -- Set when Rasd checked a done order against the telemetry (fault gone) or reopened it.
    verified_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'done') <= (done_at IS NOT NULL))
);
-- One unfinished order per scope: a second alert of the scope joins it.
CREATE UNIQUE INDEX work_orders_one_unfinished_idx ON work_orders (scope_key)
    WHERE state IN ('open', 'assigned', 'in_progress');
CREATE INDEX work_orders_scope_idx ON work_orders (scope_key, work_order_id DESC);
CREATE INDEX work_orders_state_idx ON work_orders (state, district);
CREATE INDEX work_orders_unverified_idx ON work_orders (done_at)
    WHERE state = 'done' AND verified_at IS NULL;

-- Every alert belongs to at most one order.
CREATE TABLE work_order_alerts (
    alert_id      bigint PRIMARY KEY REFERENCES alerts (alert_id),
    work_order_id bigint NOT NULL REFERENCES work_orders (work_order_id),
    linked_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_order_alerts_order_idx ON work_order_alerts (work_order_id);

CREATE TABLE work_order_steps (
    step_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    work_order_id bigint NOT NULL REFERENCES work_orders (work_order_id),
    step          text NOT NULL
                  CHECK (step IN ('open', 'join', 'assign', 'start', 'complete', 'cancel',
                                  'reopen', 'verify')),
    state         text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    note          text CHECK (length(note) <= 2000),
    details       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX work_order_steps_order_idx ON work_order_steps (work_order_id, step_id);

CREATE TABLE work_order_parts (
    work_order_id    bigint NOT NULL REFERENCES work_orders (work_order_id),
    seq              integer NOT NULL CHECK (seq >= 0),
    part             text NOT NULL CHECK (length(part) BETWEEN 1 AND 100),
    asset_id         text REFERENCES equipment_assets (asset_id) ON DELETE SET NULL,
    removed_serial   text CHECK (length(removed_serial) BETWEEN 1 AND 200),
    installed_serial text CHECK (length(installed_serial) BETWEEN 1 AND 200),
    PRIMARY KEY (work_order_id, seq)
);

CREATE TABLE work_order_photos (
    photo_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    work_order_id bigint NOT NULL REFERENCES work_orders (work_order_id),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    -- Checked by magic bytes and size in telemetry.work_orders.photos; bounded here too.
    data          bytea NOT NULL CHECK (octet_length(data) BETWEEN 1 AND 4194304),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_order_photos_order_idx ON work_order_photos (work_order_id);

-- A state-changing request's Idempotency-Key, per token: a replay gets the stored answer.
CREATE TABLE idempotency_keys (
    token_id    bigint NOT NULL,
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    -- SHA-256 of the method, path and body: the same key with another request is refused.
    fingerprint bytea NOT NULL,
    status      integer NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
