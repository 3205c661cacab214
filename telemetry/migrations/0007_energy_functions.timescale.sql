-- Hourly consumption per light (definition in 0008), TimescaleDB: read from the continuous
-- aggregate light_energy_hourly (real-time, so the newest hour is included). Same results as
-- the plain PostgreSQL variant, which aggregates light_energy on read.

-- ids: the lights to include (NULL for all); a semi-join, so a district's 26,000 ids are
-- hashed once instead of scanned for every reading as with = ANY(array).
CREATE FUNCTION rasd_light_hourly_wh(from_ts timestamptz, to_ts timestamptz, ids text[])
RETURNS TABLE (device_id text, bucket timestamptz, energy_wh double precision,
               power_w_avg double precision, readings integer, lamp_on_any boolean)
LANGUAGE sql STABLE AS $$
    SELECT s.device_id, s.bucket, s.energy_wh, s.power_w_avg, s.readings, s.lamp_on_any
    FROM (
        SELECT h.device_id, h.bucket,
               greatest(0, h.energy_wh_max - CASE
                   WHEN lag(h.bucket) OVER w >= h.bucket - INTERVAL '3 hours'
                   THEN lag(h.energy_wh_max) OVER w
                   ELSE h.energy_wh_min END) AS energy_wh,
               h.power_w_avg, h.readings::integer AS readings, h.lamp_on_any
        FROM light_energy_hourly h
        WHERE h.bucket >= date_bin(INTERVAL '1 hour', from_ts,
                                   TIMESTAMPTZ '2000-01-01 00:00:00+00') - INTERVAL '3 hours'
          AND h.bucket < to_ts
          AND (ids IS NULL OR h.device_id IN (SELECT unnest(ids)))
        WINDOW w AS (PARTITION BY h.device_id ORDER BY h.bucket)
    ) s
    WHERE s.bucket >= date_bin(INTERVAL '1 hour', from_ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')
$$;
