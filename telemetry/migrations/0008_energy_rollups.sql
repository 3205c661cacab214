-- Energy per light, circuit and district: one definition of hourly consumption, rolled up per
-- circuit and district.
--
-- A light's consumption in hour H is the rise of its cumulative meter from its previous reading
-- (if that reading is at most 3 hours older, as a late or skipped report is) to its last reading
-- in H; without such a previous reading it is the rise within H. A meter reset counts as zero.
-- The definition looks only at a fixed lookback, so a sum over any window gives the same hours.
--
-- The function that computes it, rasd_light_hourly_wh, is in 0007 (one body per backend).
-- energy_hourly_rollup holds sums per circuit and per district for every hour before
-- energy_rollup_state.watermark; readers compute the hours from the watermark on with the same
-- function. On TimescaleDB a job (0009) advances the watermark; on plain PostgreSQL it stays at
-- -infinity and every read computes with rasd_light_hourly_wh, with the same results.

CREATE TABLE energy_hourly_rollup (
    scope     text NOT NULL CHECK (scope IN ('circuit', 'district')),
    key       text NOT NULL,
    bucket    timestamptz NOT NULL,
    energy_wh double precision NOT NULL,
    lights    integer NOT NULL,
    PRIMARY KEY (scope, key, bucket)
);

CREATE TABLE energy_rollup_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    watermark timestamptz NOT NULL
);
INSERT INTO energy_rollup_state (watermark) VALUES ('-infinity');

-- Recomputes the rollup hours from least(from_ts, watermark) to to_ts (at most max_span at a
-- time, so a first run over years of history catches up in steps) and moves the watermark.
-- Returns the new watermark.
CREATE FUNCTION rasd_refresh_energy_rollups(
    from_ts timestamptz, to_ts timestamptz, max_span interval DEFAULT INTERVAL '7 days'
) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    mark timestamptz;
    lo timestamptz;
    hi timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.energy_hourly_rollup'));
    SELECT watermark INTO mark FROM energy_rollup_state FOR UPDATE;
    lo := least(from_ts, mark);
    IF lo = '-infinity' THEN
        SELECT min(bucket) INTO lo FROM light_energy_hourly;
        IF lo IS NULL THEN
            RETURN mark;
        END IF;
    END IF;
    lo := date_bin(INTERVAL '1 hour', lo, TIMESTAMPTZ '2000-01-01 00:00:00+00');
    hi := date_bin(INTERVAL '1 hour', least(to_ts, lo + max_span),
                   TIMESTAMPTZ '2000-01-01 00:00:00+00');
    IF hi <= lo THEN
        RETURN mark;
    END IF;
    DELETE FROM energy_hourly_rollup WHERE bucket >= lo AND bucket < hi;
    CREATE TEMP TABLE IF NOT EXISTS rasd_rollup_lights (
        circuit text, district text, bucket timestamptz, energy_wh double precision
    ) ON COMMIT DROP;
    INSERT INTO rasd_rollup_lights
    SELECT d.circuit, d.district, w.bucket, w.energy_wh
    FROM rasd_light_hourly_wh(lo, hi, NULL) w
    JOIN devices d ON d.device_id = w.device_id;
    INSERT INTO energy_hourly_rollup (scope, key, bucket, energy_wh, lights)
    SELECT 'circuit', circuit, bucket, sum(energy_wh), count(*)
    FROM rasd_rollup_lights WHERE circuit IS NOT NULL GROUP BY circuit, bucket;
    INSERT INTO energy_hourly_rollup (scope, key, bucket, energy_wh, lights)
    SELECT 'district', district, bucket, sum(energy_wh), count(*)
    FROM rasd_rollup_lights WHERE district IS NOT NULL GROUP BY district, bucket;
    DROP TABLE rasd_rollup_lights;
    mark := greatest(mark, hi);
    UPDATE energy_rollup_state SET watermark = mark;
    RETURN mark;
END;
$$;
