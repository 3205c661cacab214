-- Partition bookkeeping for plain PostgreSQL: which ranges exist, so that upkeep can create
-- partitions ahead of time and drop whole partitions once they are past retention.

CREATE TABLE rasd_partition_plan (
    parent_table text PRIMARY KEY,
    step         interval NOT NULL CHECK (step > INTERVAL '0')
);
INSERT INTO rasd_partition_plan (parent_table, step) VALUES
    ('vehicle_positions', INTERVAL '1 day'),
    ('light_energy', INTERVAL '7 days'),
    ('light_faults', INTERVAL '30 days');

CREATE TABLE rasd_partitions (
    partition_name text PRIMARY KEY,
    parent_table   text NOT NULL REFERENCES rasd_partition_plan (parent_table),
    range_from     timestamptz NOT NULL,
    range_to       timestamptz NOT NULL,
    UNIQUE (parent_table, range_from)
);

-- Creates every missing partition of parent covering [from_ts, to_ts); returns how many.
CREATE FUNCTION rasd_ensure_partitions(parent text, from_ts timestamptz, to_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    plan_step interval;
    lo timestamptz;
    part text;
    made integer := 0;
BEGIN
    SELECT step INTO plan_step FROM rasd_partition_plan WHERE parent_table = parent;
    IF plan_step IS NULL THEN
        RAISE EXCEPTION 'no partition plan for %', parent;
    END IF;
    -- Serialise concurrent creators (several ingest processes) per parent table.
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || parent));
    lo := date_bin(plan_step, from_ts, TIMESTAMPTZ '2000-01-03 00:00:00+00');
    WHILE lo < to_ts LOOP
        part := parent || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF NOT EXISTS (SELECT 1 FROM rasd_partitions WHERE partition_name = part) THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                part, parent, lo, lo + plan_step);
            INSERT INTO rasd_partitions VALUES (part, parent, lo, lo + plan_step);
            made := made + 1;
        END IF;
        lo := lo + plan_step;
    END LOOP;
    RETURN made;
END;
$$;

-- Drops every partition of parent whose whole range ends at or before cutoff; returns how many.
CREATE FUNCTION rasd_drop_partitions_before(parent text, cutoff timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || parent));
    FOR part IN
        SELECT partition_name FROM rasd_partitions
        WHERE parent_table = parent AND range_to <= cutoff
        ORDER BY range_from
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', part.partition_name);
        DELETE FROM rasd_partitions WHERE partition_name = part.partition_name;
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;
