-- The newest reading of each vehicle and light, and the current state of each light fault,
-- kept by statement-level triggers so that "where is every bus now" and "status of 72,000
-- lights" read one small table instead of scanning the time series.
-- The triggers see only rows actually inserted (ON CONFLICT DO NOTHING skips duplicates) and
-- upsert them in device order, so concurrent ingest transactions lock rows in the same order.
-- A late reading older than the stored one never replaces it.

CREATE TABLE vehicle_latest (
    device_id   text PRIMARY KEY,
    time        timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    speed_kmh   double precision,
    heading_deg double precision,
    accuracy_m  double precision,
    route       text,
    seq         bigint
);
-- Every row is rewritten every few seconds: free space on each page keeps the updates HOT
-- (no index churn) and an eager autovacuum keeps the table at its live size.
ALTER TABLE vehicle_latest SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0,
                                autovacuum_vacuum_threshold = 2000);

CREATE TABLE light_latest (
    device_id    text PRIMARY KEY,
    time         timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    energy_wh    double precision NOT NULL,
    power_w      double precision,
    voltage_v    double precision,
    current_a    double precision,
    power_factor double precision,
    lamp_on      boolean,
    dim_pct      double precision,
    seq          bigint
);
ALTER TABLE light_latest SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);

CREATE TABLE light_fault_state (
    device_id text NOT NULL,
    fault     text NOT NULL,
    active    boolean NOT NULL,
    time      timestamptz NOT NULL,
    detail    text,
    PRIMARY KEY (device_id, fault)
);
CREATE INDEX light_fault_state_active_idx ON light_fault_state (device_id) WHERE active;

CREATE FUNCTION rasd_vehicle_latest_upsert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vehicle_latest AS v
    SELECT DISTINCT ON (device_id) device_id, time, received_at, lat, lon, speed_kmh,
           heading_deg, accuracy_m, route, seq
    FROM rasd_new_rows ORDER BY device_id, time DESC
    ON CONFLICT (device_id) DO UPDATE SET
        time = EXCLUDED.time, received_at = EXCLUDED.received_at, lat = EXCLUDED.lat,
        lon = EXCLUDED.lon, speed_kmh = EXCLUDED.speed_kmh, heading_deg = EXCLUDED.heading_deg,
        accuracy_m = EXCLUDED.accuracy_m, route = EXCLUDED.route, seq = EXCLUDED.seq
    WHERE v.time < EXCLUDED.time;
    RETURN NULL;
END;
$$;

CREATE FUNCTION rasd_light_latest_upsert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO light_latest AS l
    SELECT DISTINCT ON (device_id) device_id, time, received_at, energy_wh, power_w, voltage_v,
           current_a, power_factor, lamp_on, dim_pct, seq
    FROM rasd_new_rows ORDER BY device_id, time DESC
    ON CONFLICT (device_id) DO UPDATE SET
        time = EXCLUDED.time, received_at = EXCLUDED.received_at,
        energy_wh = EXCLUDED.energy_wh, power_w = EXCLUDED.power_w,
        voltage_v = EXCLUDED.voltage_v, current_a = EXCLUDED.current_a,
        power_factor = EXCLUDED.power_factor, lamp_on = EXCLUDED.lamp_on,
        dim_pct = EXCLUDED.dim_pct, seq = EXCLUDED.seq
    WHERE l.time < EXCLUDED.time;
    RETURN NULL;
END;
$$;

CREATE FUNCTION rasd_light_fault_state_upsert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO light_fault_state AS f
    SELECT DISTINCT ON (device_id, fault) device_id, fault, active, time, detail
    FROM rasd_new_rows ORDER BY device_id, fault, time DESC
    ON CONFLICT (device_id, fault) DO UPDATE SET
        active = EXCLUDED.active, time = EXCLUDED.time, detail = EXCLUDED.detail
    WHERE f.time < EXCLUDED.time;
    RETURN NULL;
END;
$$;

CREATE TRIGGER vehicle_latest_upsert AFTER INSERT ON vehicle_positions
    REFERENCING NEW TABLE AS rasd_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rasd_vehicle_latest_upsert();
CREATE TRIGGER light_latest_upsert AFTER INSERT ON light_energy
    REFERENCING NEW TABLE AS rasd_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rasd_light_latest_upsert();
CREATE TRIGGER light_fault_state_upsert AFTER INSERT ON light_faults
    REFERENCING NEW TABLE AS rasd_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rasd_light_fault_state_upsert();

-- Readings stored before this migration.
INSERT INTO vehicle_latest
SELECT DISTINCT ON (device_id) device_id, time, received_at, lat, lon, speed_kmh, heading_deg,
       accuracy_m, route, seq
FROM vehicle_positions ORDER BY device_id, time DESC;
INSERT INTO light_latest
SELECT DISTINCT ON (device_id) device_id, time, received_at, energy_wh, power_w, voltage_v,
       current_a, power_factor, lamp_on, dim_pct, seq
FROM light_energy ORDER BY device_id, time DESC;
INSERT INTO light_fault_state
SELECT DISTINCT ON (device_id, fault) device_id, fault, active, time, detail
FROM light_faults ORDER BY device_id, fault, time DESC;
