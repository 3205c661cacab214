-- The maintenance KPIs of each local month as stored for open data (docs/work_orders.md,
-- feed maintenance-kpis-monthly): figures only, never a person, a crew, a light or a serial.
--
-- One row per month x area x section: district '' is the whole city; section 'totals' holds the
-- area's month (kind, supplier and tender ''), 'repairs' one fault kind's repair times, and
-- 'warranty' the claims of one supplier and tender ('' when the register has none). Empty keys
-- are '' rather than NULL so that the primary key holds every row once.
CREATE TABLE maintenance_kpi_figures (
    month              date NOT NULL CHECK (extract(day FROM month) = 1),
    district           text NOT NULL,
    section            text NOT NULL CHECK (section IN ('totals', 'repairs', 'warranty')),
    kind               text NOT NULL DEFAULT '',
    supplier           text NOT NULL DEFAULT '',
    tender             text NOT NULL DEFAULT '',
    light_points       integer,
    outages            integer,
    outages_per_1000   double precision,
    faults             integer,
    found_by_telemetry integer,
    found_by_telemetry_share double precision,
    day_burning_hours  double precision,
    day_burning_lights integer,
    repairs            integer,
    p50_hours          double precision,
    p90_hours          double precision,
    within_48h_share   double precision,
    warranty_claims    integer,
    PRIMARY KEY (month, district, section, kind, supplier, tender),
    CHECK ((section = 'repairs') = (kind <> '')),
    CHECK (section = 'warranty' OR (supplier = '' AND tender = ''))
);

-- When each month was last stored: the time zone of its months and the last local day that
-- was complete then (a month is final once that day is far enough past its end).
CREATE TABLE maintenance_kpi_months (
    month          date PRIMARY KEY CHECK (extract(day FROM month) = 1),
    timezone       text NOT NULL,
    complete_until date NOT NULL,
    districts      integer NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now()
);
