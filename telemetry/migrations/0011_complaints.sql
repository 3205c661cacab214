-- Citizens' complaints (Open311 GeoReport v2 service requests, and those imported from the
-- national platform) and the telemetry evidence linked to them. Plain tables on every backend;
-- all SQL touching them lives in telemetry/storage/complaints.py. See docs/open311.md.

CREATE TABLE complaints (
    complaint_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'open311' (POSTed here) or the platform a complaint was imported from ('chikaya').
    source             text NOT NULL CHECK (source ~ '^[a-z0-9_]{1,32}$'),
    -- The id the source gave it: an import is idempotent by (source, external_id).
    external_id        text CHECK (length(external_id) BETWEEN 1 AND 128),
    service_code       text NOT NULL CHECK (service_code ~ '^[a-z0-9_]{1,64}$'),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    -- Open311 status: open or closed; status_notes says why it changed.
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    status_notes       text,
    agency_responsible text,
    requested_at       timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    expected_at        timestamptz,
    closed_at          timestamptz,
    address            text CHECK (length(address) <= 500),
    lat                double precision CHECK (lat BETWEEN -90 AND 90),
    lon                double precision CHECK (lon BETWEEN -180 AND 180),
    district           text,
    media_url          text CHECK (length(media_url) <= 1000),
    -- The maintenance/operations alert this complaint opened or joined; its status follows it.
    alert_id           bigint REFERENCES alerts (alert_id),
    -- pending (not linked yet), linked, no_asset (nothing within the radius), no_location.
    link_state         text NOT NULL DEFAULT 'pending'
                       CHECK (link_state IN ('pending', 'linked', 'no_asset', 'no_location')),
    linked_at          timestamptz,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK ((lat IS NULL) = (lon IS NULL))
);
CREATE UNIQUE INDEX complaints_source_id_idx ON complaints (source, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX complaints_requested_idx ON complaints (requested_at DESC, complaint_id DESC);
CREATE INDEX complaints_service_idx ON complaints (service_code, requested_at);
CREATE INDEX complaints_alert_idx ON complaints (alert_id) WHERE alert_id IS NOT NULL;
CREATE INDEX complaints_pending_idx ON complaints (complaint_id) WHERE link_state = 'pending';

-- Personal data, kept apart so that no public query can select it by accident.
CREATE TABLE complaint_contacts (
    complaint_id bigint PRIMARY KEY REFERENCES complaints (complaint_id) ON DELETE CASCADE,
    first_name   text CHECK (length(first_name) <= 200),
    last_name    text CHECK (length(last_name) <= 200),
    email        text CHECK (length(email) <= 320),
    phone        text CHECK (length(phone) <= 64),
    account_id   text CHECK (length(account_id) <= 128),
    device_id    text CHECK (length(device_id) <= 128)
);

-- What the telemetry says about a complaint: the asset(s) it concerns and the evidence
-- (a light's recent readings and faults, a truck's passage or its absence, a stop's
-- observed passages and headway), one row per asset.
CREATE TABLE complaint_evidence (
    complaint_id bigint NOT NULL REFERENCES complaints (complaint_id) ON DELETE CASCADE,
    seq          integer NOT NULL CHECK (seq >= 0),
    -- nearest_light, collection_point, truck_passage, no_service, bus_stop, ...
    kind         text NOT NULL CHECK (kind ~ '^[a-z_]{1,64}$'),
    asset_kind   text CHECK (asset_kind IN ('light', 'bus', 'truck', 'stop', 'round')),
    asset_key    text,
    distance_m   double precision CHECK (distance_m >= 0),
    -- Verdict where the evidence gives one: confirms, refutes or unknown.
    verdict      text NOT NULL DEFAULT 'unknown'
                 CHECK (verdict IN ('confirms', 'refutes', 'unknown')),
    observed_at  timestamptz,
    details      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (complaint_id, seq)
);
CREATE INDEX complaint_evidence_asset_idx ON complaint_evidence (asset_key);
