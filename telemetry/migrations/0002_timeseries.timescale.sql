-- Time series on TimescaleDB: hypertables, columnstore compression, hourly energy aggregate.
-- Chunk intervals: 2,000 vehicles at 1 Hz write ~7.2 M rows/h, so 6 h chunks (~40 M rows with
-- their index) stay near a quarter of a 24 GiB server's memory; 72,000 lights every 15 min write
-- ~6.9 M rows/day, so 7-day chunks; faults are rare, 30-day chunks.
-- Retention policies are set by telemetry.storage.maintenance from RASD_RETENTION_* settings.

CREATE TABLE vehicle_positions (
    device_id   text NOT NULL,
    time        timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    speed_kmh   double precision,
    heading_deg double precision,
    accuracy_m  double precision,
    route       text,
    seq         bigint,
    PRIMARY KEY (device_id, time)
);

CREATE TABLE light_energy (
    device_id    text NOT NULL,
    time         timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    energy_wh    double precision NOT NULL,
    power_w      double precision,
    voltage_v    double precision,
    current_a    double precision,
    power_factor double precision,
    lamp_on      boolean,
    dim_pct      double precision,
    seq          bigint,
    PRIMARY KEY (device_id, time)
);

CREATE TABLE light_faults (
    device_id   text NOT NULL,
    time        timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    fault       text NOT NULL,
    active      boolean NOT NULL,
    detail      text,
    PRIMARY KEY (device_id, time, fault)
);

SELECT create_hypertable('vehicle_positions', 'time', chunk_time_interval => INTERVAL '6 hours');
SELECT create_hypertable('light_energy', 'time', chunk_time_interval => INTERVAL '7 days');
SELECT create_hypertable('light_faults', 'time', chunk_time_interval => INTERVAL '30 days');

-- Compress only chunks older than the ingest age window (7 days) plus a margin, so late
-- readings still land in uncompressed chunks.
ALTER TABLE vehicle_positions SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC'
);
ALTER TABLE light_energy SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('vehicle_positions', INTERVAL '8 days');
SELECT add_compression_policy('light_energy', INTERVAL '8 days');

CREATE MATERIALIZED VIEW light_energy_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', time) AS bucket,
       min(energy_wh) AS energy_wh_min,
       max(energy_wh) AS energy_wh_max,
       avg(power_w)   AS power_w_avg,
       count(*)       AS readings,
       bool_or(lamp_on) AS lamp_on_any
FROM light_energy
GROUP BY 1, 2
WITH NO DATA;

SELECT add_continuous_aggregate_policy('light_energy_hourly',
    start_offset => INTERVAL '8 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
