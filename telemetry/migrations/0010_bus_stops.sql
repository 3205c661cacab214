-- Bus stops and the scheduled service of each line: the reference the complaints linker
-- compares observed passages with (headway observed vs scheduled). Filled, with route shapes
-- and collection rounds, by `python -m alerts routes import FILE.json`; all SQL touching them
-- lives in telemetry/storage/assets.py. Plain tables on every backend.

CREATE TABLE bus_stops (
    stop_id    text PRIMARY KEY CHECK (length(stop_id) BETWEEN 1 AND 64),
    name       text NOT NULL DEFAULT '',
    lat        double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon        double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The stops a line (devices.route of its buses) serves, in driving order.
CREATE TABLE line_stops (
    route   text NOT NULL CHECK (length(route) BETWEEN 1 AND 64),
    seq     integer NOT NULL CHECK (seq >= 0),
    stop_id text NOT NULL REFERENCES bus_stops (stop_id) ON DELETE CASCADE,
    PRIMARY KEY (route, seq)
);
CREATE INDEX line_stops_stop_idx ON line_stops (stop_id);

-- Scheduled headway of a line over a band of local time (service 06:00-23:00 in Marrakech).
CREATE TABLE line_schedules (
    route       text NOT NULL CHECK (length(route) BETWEEN 1 AND 64),
    start_local time NOT NULL,
    end_local   time NOT NULL,
    headway_s   integer NOT NULL CHECK (headway_s > 0),
    timezone    text NOT NULL DEFAULT 'Africa/Casablanca',
    PRIMARY KEY (route, start_local)
);
