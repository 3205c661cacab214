-- Partitions for the times readings actually carry, not for the whole span between the oldest
-- and the newest: a back-filled batch holding a fix from years ago and one from now makes two
-- partitions, not thousands (which ran a first start out of shared memory).

-- Creates the missing partitions of parent that hold any of times; returns how many.
CREATE FUNCTION rasd_ensure_partitions_at(parent text, times timestamptz[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    plan_step interval;
    lo timestamptz;
    made integer := 0;
BEGIN
    SELECT step INTO plan_step FROM rasd_partition_plan WHERE parent_table = parent;
    IF plan_step IS NULL THEN
        RAISE EXCEPTION 'no partition plan for %', parent;
    END IF;
    FOR lo IN
        SELECT DISTINCT date_bin(plan_step, t, TIMESTAMPTZ '2000-01-03 00:00:00+00')
        FROM unnest(times) AS t
        WHERE t IS NOT NULL
        ORDER BY 1
    LOOP
        made := made + rasd_ensure_partitions(parent, lo, lo + plan_step);
    END LOOP;
    RETURN made;
END;
$$;
