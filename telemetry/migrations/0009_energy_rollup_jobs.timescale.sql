-- TimescaleDB: a background job keeps the energy rollups (0008) up to date. Every 15 minutes
-- it recomputes the last 3 hours and catches up to the current hour; once a day it recomputes
-- the last 8 days, the window in which late readings are still accepted and aggregated.
-- Background jobs do not run with the service's search_path, so the job and the refresh carry
-- the schema (rasd_light_hourly_wh does not: a SET clause would stop it being inlined).

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION rasd_refresh_energy_rollups(timestamptz, timestamptz, interval) '
                   'SET search_path = %I, public', current_schema());
END;
$$;

CREATE PROCEDURE rasd_energy_rollup_job(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    lookback interval := coalesce((config ->> 'lookback')::interval, INTERVAL '3 hours');
BEGIN
    PERFORM rasd_refresh_energy_rollups(now() - lookback, now(),
                                        coalesce((config ->> 'max_span')::interval,
                                                 INTERVAL '7 days'));
END;
$$;

DO $$
BEGIN
    EXECUTE format('ALTER PROCEDURE rasd_energy_rollup_job(integer, jsonb) '
                   'SET search_path = %I, public', current_schema());
END;
$$;

SELECT add_job('rasd_energy_rollup_job', INTERVAL '15 minutes',
               config => '{"lookback": "3 hours"}');
SELECT add_job('rasd_energy_rollup_job', INTERVAL '1 day',
               config => '{"lookback": "8 days", "max_span": "9 days"}');
