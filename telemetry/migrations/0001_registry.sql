-- Device registry and dead letters: plain tables on every storage backend.

CREATE TABLE devices (
    device_id       text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    fleet           text NOT NULL CHECK (fleet IN ('bus', 'truck', 'light')),
    label           text,
    route           text,
    district        text,
    circuit         text,
    rated_w         double precision CHECK (rated_w >= 0),
    lat             double precision CHECK (lat BETWEEN -90 AND 90),
    lon             double precision CHECK (lon BETWEEN -180 AND 180),
    operator        text,
    auto_registered boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_fleet_idx ON devices (fleet);
CREATE INDEX devices_district_idx ON devices (district);
CREATE INDEX devices_circuit_idx ON devices (circuit);
CREATE INDEX devices_updated_at_idx ON devices (updated_at);

-- A redelivered bad message must not be dead-lettered twice, hence the digest key.
CREATE TABLE dead_letters (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    topic          text NOT NULL,
    payload        bytea NOT NULL,
    reason         text NOT NULL,
    reason_code    text NOT NULL,
    device_id      text,
    element_index  integer,
    payload_sha256 bytea NOT NULL GENERATED ALWAYS AS (sha256(payload)) STORED
);
CREATE UNIQUE INDEX dead_letters_dedup_idx
    ON dead_letters (topic, payload_sha256, element_index) NULLS NOT DISTINCT;
CREATE INDEX dead_letters_received_at_idx ON dead_letters (received_at);
CREATE INDEX dead_letters_reason_code_idx ON dead_letters (reason_code, received_at);
