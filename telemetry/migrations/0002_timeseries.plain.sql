-- Time series on plain PostgreSQL: native range partitions by device time.
-- Partitions are created ahead and dropped after retention by rasd_ensure_partitions and
-- rasd_drop_partitions_before (0003), driven by telemetry.storage.maintenance.

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
) PARTITION BY RANGE (time);

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
) PARTITION BY RANGE (time);

CREATE TABLE light_faults (
    device_id   text NOT NULL,
    time        timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    fault       text NOT NULL,
    active      boolean NOT NULL,
    detail      text,
    PRIMARY KEY (device_id, time, fault)
) PARTITION BY RANGE (time);

CREATE INDEX vehicle_positions_time_idx ON vehicle_positions (time);
CREATE INDEX light_energy_time_idx ON light_energy (time);
CREATE INDEX light_faults_time_idx ON light_faults (time);

-- Same name and columns as the TimescaleDB continuous aggregate, computed on read.
CREATE VIEW light_energy_hourly AS
SELECT device_id,
       date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       min(energy_wh) AS energy_wh_min,
       max(energy_wh) AS energy_wh_max,
       avg(power_w)   AS power_w_avg,
       count(*)       AS readings,
       bool_or(lamp_on) AS lamp_on_any
FROM light_energy
GROUP BY 1, 2;
