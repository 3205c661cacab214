-- Circuit and district energy after the rollups' watermark (0008), fast on both backends.
--
-- The hours from the watermark on are computed on read. Done with rasd_light_hourly_wh, that
-- costs the 3-hour lookback of the consumption definition for every light of the group (on
-- TimescaleDB the newest hours of the continuous aggregate are aggregated from raw readings
-- of every light in the city, then filtered). Instead, whenever the refresh writes the
-- watermark, energy_rollup_lights records each light's last hour with readings in the 3 hours
-- before it and the meter's highest value in that hour: exactly the previous hour the
-- definition looks back to, for any hour from the watermark on. A read then aggregates only
-- the group's raw readings after the watermark (time index; partitions or chunks pruned),
-- seeded from that table. Same results as rasd_light_hourly_wh (tests/test_api_lights.py).

CREATE TABLE energy_rollup_lights (
    device_id     text PRIMARY KEY,
    bucket        timestamptz NOT NULL,
    energy_wh_max double precision NOT NULL
);

-- Recomputes energy_rollup_lights for the watermark mark; run by the trigger below inside the
-- refresh's transaction, so readers see the table and the watermark change together.
CREATE FUNCTION rasd_refresh_energy_rollup_lights(mark timestamptz) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM energy_rollup_lights;
    INSERT INTO energy_rollup_lights (device_id, bucket, energy_wh_max)
    SELECT DISTINCT ON (h.device_id) h.device_id, h.bucket, h.energy_wh_max
    FROM (
        SELECT e.device_id,
               date_bin(INTERVAL '1 hour', e.time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
               max(e.energy_wh) AS energy_wh_max
        FROM light_energy e
        WHERE e.time >= mark - INTERVAL '3 hours' AND e.time < mark
        GROUP BY 1, 2
    ) h
    ORDER BY h.device_id, h.bucket DESC;
$$;

-- The refresh (0008) ends every run that recomputed hours by writing the watermark, moved or
-- not (older hours may have changed through late readings): follow it there.
CREATE FUNCTION rasd_energy_rollup_lights_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rasd_refresh_energy_rollup_lights(NEW.watermark);
    RETURN NULL;
END;
$$;

CREATE TRIGGER energy_rollup_lights_follow AFTER UPDATE ON energy_rollup_state
FOR EACH ROW EXECUTE FUNCTION rasd_energy_rollup_lights_follow();

-- A schema migrated with rollups already materialised gets its lookback table now.
SELECT rasd_refresh_energy_rollup_lights(watermark)
FROM energy_rollup_state WHERE watermark > '-infinity';

-- Hourly consumption summed over the lights of a circuit or district (scope 'circuit' or
-- 'district'), for hours in [from_ts, to_ts): per hour the energy and how many lights
-- reported. When from_ts is the rollups' watermark, only the group's readings from it on are
-- read, seeded by energy_rollup_lights; otherwise rasd_light_hourly_wh computes it all.
-- Dynamic SQL: planned on every call with the watermark known, so the planner sees how few
-- readings follow it (a cached generic plan would assume a large share of the table).
CREATE FUNCTION rasd_group_hourly_wh(
    scope text, key text, from_ts timestamptz, to_ts timestamptz
) RETURNS TABLE (bucket timestamptz, energy_wh double precision, lights integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    mark timestamptz;
BEGIN
    IF scope NOT IN ('circuit', 'district') THEN
        RAISE EXCEPTION 'scope must be circuit or district, not %', scope;
    END IF;
    SELECT s.watermark INTO mark FROM energy_rollup_state s;
    IF from_ts = mark AND mark > '-infinity' THEN
        -- The group's lights as a semi-join: an array of 26,000 ids as a parameter would
        -- make the planner estimate each element on its own.
        RETURN QUERY EXECUTE $q$
            WITH ids AS NOT MATERIALIZED (
                SELECT d.device_id FROM devices d
                WHERE d.fleet = 'light'
                  AND CASE $3 WHEN 'circuit' THEN d.circuit ELSE d.district END = $4
            )
            SELECT t.bucket, sum(t.energy_wh), count(*)::integer
            FROM (
                SELECT x.bucket, x.seed,
                       greatest(0, x.hi - CASE
                           WHEN lag(x.bucket) OVER w >= x.bucket - INTERVAL '3 hours'
                           THEN lag(x.hi) OVER w
                           ELSE x.lo END) AS energy_wh
                FROM (
                    SELECT e.device_id,
                           date_bin(INTERVAL '1 hour', e.time,
                                    TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                           min(e.energy_wh) AS lo, max(e.energy_wh) AS hi, false AS seed
                    FROM light_energy e
                    WHERE e.time >= $1
                      AND e.time < date_bin(INTERVAL '1 hour', $2 - INTERVAL '1 microsecond',
                                            TIMESTAMPTZ '2000-01-01 00:00:00+00')
                                   + INTERVAL '1 hour'
                      AND e.device_id IN (SELECT device_id FROM ids)
                    GROUP BY 1, 2
                    UNION ALL
                    SELECT l.device_id, l.bucket, l.energy_wh_max, l.energy_wh_max, true
                    FROM energy_rollup_lights l
                    WHERE l.device_id IN (SELECT device_id FROM ids)
                ) x
                -- Byte order is enough to group a light's hours, and cheaper than collation.
                WINDOW w AS (PARTITION BY x.device_id COLLATE "C" ORDER BY x.bucket)
            ) t
            WHERE NOT t.seed
            GROUP BY t.bucket
        $q$ USING mark, to_ts, scope, key;
    ELSE
        RETURN QUERY
            SELECT w.bucket, sum(w.energy_wh), count(*)::integer
            FROM rasd_light_hourly_wh(
                from_ts, to_ts,
                ARRAY(SELECT d.device_id FROM devices d
                      WHERE d.fleet = 'light'
                        AND CASE scope WHEN 'circuit' THEN d.circuit ELSE d.district END = key)
            ) w
            GROUP BY w.bucket;
    END IF;
END;
$$;
