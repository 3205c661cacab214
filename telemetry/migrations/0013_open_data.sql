-- Open data (docs/open_data.md): the materialised daily figures behind the public feeds that are
-- too heavy to compute on every request (a day of every light's faults and last readings, a
-- night of every truck's fixes against its round's points, a day of every bus's fixes), and
-- the functions that compute one local day of each. Plain tables and SQL functions, the same on
-- both backends. The API's refresher (api/open_data/refresh.py) calls them one day per
-- transaction, under a session advisory lock, and keeps a watermark per feed; all SQL touching
-- these objects lives in telemetry/storage/open_data.py.

-- Per materialised feed: days (nights) before `watermark` are materialised, in the local time
-- `timezone` they were computed in (a different configured time zone recomputes everything).
CREATE TABLE open_data_state (
    feed         text PRIMARY KEY CHECK (feed IN ('light_status', 'waste_rounds', 'bus_service')),
    watermark    date,
    timezone     text NOT NULL DEFAULT 'Africa/Casablanca',
    refreshed_at timestamptz
);
INSERT INTO open_data_state (feed) VALUES ('light_status'), ('waste_rounds'), ('bus_service');

-- Every materialised day of every feed (a day may have no rows: no lights, rounds or buses).
CREATE TABLE open_data_days (
    feed         text NOT NULL REFERENCES open_data_state (feed),
    day          date NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, day)
);

-- Lights per district at the end of each local day, classified as the API classifies a light
-- now: faulty (an active fault condition), else silent (no reading in the last `silent_after`
-- of the day), else in service; plus how many had a fault at any time of the day.
CREATE TABLE open_data_light_status_daily (
    day               date NOT NULL,
    district          text NOT NULL,  -- '' for lights without a district
    lights            integer NOT NULL,
    in_service        integer NOT NULL,
    faulty            integer NOT NULL,
    silent            integer NOT NULL,
    faulty_during_day integer NOT NULL,
    PRIMARY KEY (day, district)
);

-- The fault conditions active at the end of each materialised day (internal, never published):
-- the next day starts from them instead of searching the whole fault history.
CREATE TABLE open_data_light_faults_eod (
    day       date NOT NULL,
    device_id text NOT NULL,
    fault     text NOT NULL,
    PRIMARY KEY (day, device_id, fault)
);

-- Each round of collection_rounds for each night (the local date its shift starts, in the
-- round's time zone): its points and how many a truck of the round visited. Internal by round;
-- the feeds publish sums per operator and district only.
CREATE TABLE open_data_waste_rounds (
    night            date NOT NULL,
    round            text NOT NULL,
    operator         text NOT NULL,  -- '' when no registered truck serves the round
    district         text NOT NULL,  -- ''  idem
    points           integer NOT NULL,
    visited          integer NOT NULL,
    trucks_reporting integer NOT NULL,
    PRIMARY KEY (night, round)
);

-- Bus service delivered per line and local day (definitions in rasd_open_data_bus_day).
CREATE TABLE open_data_bus_service_daily (
    day      date NOT NULL,
    route    text NOT NULL,
    km       double precision NOT NULL,
    trips    integer NOT NULL,
    vehicles integer NOT NULL,
    PRIMARY KEY (day, route)
);

-- Repair times are computed on read from resolved light alerts, by resolution time.
CREATE INDEX open_data_alerts_resolved_idx ON alerts (resolved_at)
    WHERE asset_kind = 'light' AND resolved_at IS NOT NULL;

-- Great-circle distance in metres (the alerts rules' haversine, same Earth radius).
CREATE FUNCTION rasd_open_data_distance_m(
    lat1 double precision, lon1 double precision, lat2 double precision, lon2 double precision
) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 2 * 6371008.8 * asin(least(1.0, sqrt(
        sin(radians(lat2 - lat1) / 2) ^ 2
        + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)))
$$;

-- Marks a day materialised and moves the feed's watermark past it.
CREATE FUNCTION rasd_open_data_mark_day(feed_name text, d date) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO open_data_days (feed, day) VALUES (feed_name, d)
    ON CONFLICT (feed, day) DO UPDATE SET refreshed_at = now();
    UPDATE open_data_state
    SET watermark = greatest(coalesce(watermark, d + 1), d + 1), refreshed_at = now()
    WHERE feed = feed_name;
$$;

-- Forgets everything materialised for a feed, and records the time zone of what comes next.
CREATE FUNCTION rasd_open_data_reset(feed_name text, tz text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF feed_name = 'light_status' THEN
        DELETE FROM open_data_light_status_daily;
        DELETE FROM open_data_light_faults_eod;
    ELSIF feed_name = 'waste_rounds' THEN
        DELETE FROM open_data_waste_rounds;
    ELSIF feed_name = 'bus_service' THEN
        DELETE FROM open_data_bus_service_daily;
    ELSE
        RAISE EXCEPTION 'unknown open-data feed %', feed_name;
    END IF;
    DELETE FROM open_data_days WHERE feed = feed_name;
    UPDATE open_data_state SET watermark = NULL, timezone = tz, refreshed_at = now()
    WHERE feed = feed_name;
END;
$$;

-- Lights of local day d in time zone tz: the lights of the registry (when the day is computed).
-- The fault conditions active when the day starts are the previous day's end-of-day set
-- when that day is materialised, else the last event of each (light, fault) before the day.
CREATE FUNCTION rasd_open_data_light_day(d date, tz text, silent_after interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := d::timestamp AT TIME ZONE tz;
    hi timestamptz := (d + 1)::timestamp AT TIME ZONE tz;
BEGIN
    CREATE TEMP TABLE rasd_od_start (device_id text, fault text) ON COMMIT DROP;
    IF EXISTS (SELECT 1 FROM open_data_days WHERE feed = 'light_status' AND day = d - 1) THEN
        INSERT INTO rasd_od_start
        SELECT e.device_id, e.fault FROM open_data_light_faults_eod e WHERE e.day = d - 1;
    ELSE
        INSERT INTO rasd_od_start
        SELECT s.device_id, s.fault FROM (
            SELECT DISTINCT ON (f.device_id, f.fault) f.device_id, f.fault, f.active
            FROM light_faults f WHERE f.time < lo
            ORDER BY f.device_id, f.fault, f.time DESC
        ) s WHERE s.active;
    END IF;

    DELETE FROM open_data_light_faults_eod WHERE day = d;
    INSERT INTO open_data_light_faults_eod (day, device_id, fault)
    SELECT d, x.device_id, x.fault FROM (
        SELECT DISTINCT ON (e.device_id, e.fault) e.device_id, e.fault, e.active
        FROM (
            SELECT s.device_id, s.fault, true AS active, lo - INTERVAL '1 microsecond' AS time
            FROM rasd_od_start s
            UNION ALL
            SELECT f.device_id, f.fault, f.active, f.time
            FROM light_faults f WHERE f.time >= lo AND f.time < hi
        ) e
        ORDER BY e.device_id, e.fault, e.time DESC
    ) x WHERE x.active;

    DELETE FROM open_data_light_status_daily WHERE day = d;
    INSERT INTO open_data_light_status_daily
        (day, district, lights, in_service, faulty, silent, faulty_during_day)
    SELECT d, coalesce(l.district, ''), count(*),
           count(*) FILTER (WHERE NOT l.faulty AND l.reporting),
           count(*) FILTER (WHERE l.faulty),
           count(*) FILTER (WHERE NOT l.faulty AND NOT l.reporting),
           count(*) FILTER (WHERE l.faulty_during)
    FROM (
        SELECT dv.district,
               dv.device_id IN (SELECT e.device_id FROM open_data_light_faults_eod e
                                WHERE e.day = d) AS faulty,
               dv.device_id IN (SELECT r.device_id FROM light_energy r
                                WHERE r.time >= hi - silent_after AND r.time < hi) AS reporting,
               dv.device_id IN (SELECT s.device_id FROM rasd_od_start s
                                UNION
                                SELECT f.device_id FROM light_faults f
                                WHERE f.time >= lo AND f.time < hi AND f.active) AS faulty_during
        FROM devices dv
        WHERE dv.fleet = 'light'
    ) l
    GROUP BY coalesce(l.district, '');

    DROP TABLE rasd_od_start;
    PERFORM rasd_open_data_mark_day('light_status', d);
END;
$$;

-- Collection rounds of night n: each round of collection_rounds with at least one point is
-- planned; a point is visited when a truck of the round (a truck whose devices.route names the
-- round, else the truck whose device id is the round's name, as the missed_collection rule
-- says) has a fix within the point's radius at or below stop_kmh during the round's shift
-- [n shift_start, shift_end) in the round's time zone (an end at or before the start is on the
-- next day). Candidate fixes are matched to points through a grid of cells (a hash join), then
-- by exact distance.
CREATE FUNCTION rasd_open_data_rounds_night(n date, stop_kmh double precision) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cell CONSTANT double precision := 0.005;  -- degrees, ~550 m of latitude
BEGIN
    DELETE FROM open_data_waste_rounds WHERE night = n;
    INSERT INTO open_data_waste_rounds
        (night, round, operator, district, points, visited, trucks_reporting)
    WITH shifts AS (
        SELECT r.round,
               (n + r.shift_start) AT TIME ZONE r.timezone AS lo,
               (CASE WHEN r.shift_end > r.shift_start THEN n ELSE n + 1 END + r.shift_end)
                   AT TIME ZONE r.timezone AS hi
        FROM collection_rounds r
        WHERE EXISTS (SELECT 1 FROM collection_points p WHERE p.round = r.round)
    ),
    crew AS (
        SELECT t.device_id, t.operator, t.district, t.round
        FROM (
            SELECT d.device_id, d.operator, d.district,
                   CASE WHEN d.route IN (SELECT round FROM collection_rounds) THEN d.route
                        ELSE d.device_id END AS round
            FROM devices d WHERE d.fleet = 'truck'
        ) t
        JOIN shifts s ON s.round = t.round
    ),
    fixes AS MATERIALIZED (
        SELECT c.round, f.device_id, f.lat, f.lon,
               (f.speed_kmh IS NULL OR f.speed_kmh <= stop_kmh) AS stopped
        FROM crew c
        JOIN shifts s ON s.round = c.round
        JOIN vehicle_positions f
          ON f.device_id = c.device_id AND f.time >= s.lo AND f.time < s.hi
    ),
    point_cells AS (
        SELECT p.round, p.seq, p.lat, p.lon, p.radius_m, cy, cx
        FROM collection_points p
        JOIN shifts s ON s.round = p.round,
        LATERAL generate_series(floor((p.lat - p.radius_m / 111320.0) / cell)::bigint,
                                floor((p.lat + p.radius_m / 111320.0) / cell)::bigint) cy,
        LATERAL generate_series(
            floor((p.lon - p.radius_m / (111320.0 * cos(radians(p.lat)))) / cell)::bigint,
            floor((p.lon + p.radius_m / (111320.0 * cos(radians(p.lat)))) / cell)::bigint) cx
    ),
    visited AS MATERIALIZED (
        SELECT pc.round, count(DISTINCT pc.seq) AS points
        FROM point_cells pc
        JOIN fixes f
          ON f.round = pc.round AND f.stopped
         AND floor(f.lat / cell)::bigint = pc.cy AND floor(f.lon / cell)::bigint = pc.cx
        WHERE rasd_open_data_distance_m(pc.lat, pc.lon, f.lat, f.lon) <= pc.radius_m
        GROUP BY pc.round
    ),
    planned AS (
        SELECT p.round, count(*) AS points FROM collection_points p GROUP BY p.round
    ),
    reporting AS (
        SELECT f.round, count(DISTINCT f.device_id) AS trucks FROM fixes f GROUP BY f.round
    ),
    served AS (
        SELECT c.round, min(c.operator) AS operator, min(c.district) AS district
        FROM crew c GROUP BY c.round
    )
    SELECT n, s.round, coalesce(sv.operator, ''), coalesce(sv.district, ''), pl.points,
           coalesce(v.points, 0), coalesce(r.trucks, 0)
    FROM shifts s
    JOIN planned pl ON pl.round = s.round
    LEFT JOIN visited v ON v.round = s.round
    LEFT JOIN reporting r ON r.round = s.round
    LEFT JOIN served sv ON sv.round = s.round;
    PERFORM rasd_open_data_mark_day('waste_rounds', n);
END;
$$;

-- Bus service of local day d in time zone tz, per line (the route a fix reports, else the
-- bus's registered route):
--   km: the sum of great-circle distances between consecutive fixes of a bus on the same line,
--       for pairs at most 5 minutes apart whose implied speed is 3-120 km/h (GPS jitter while
--       parked and tracker jumps are left out), counted on the day of the pair's first fix;
--   trips: a bus reaching one terminus of its line (a fix within terminus_m of it) when its
--       previous terminus passage, at most max_trip earlier, was at the other terminus; counted
--       on the day of arrival. The termini are the line's first and last stops (line_stops),
--       else the ends of its route shape. A loop line (termini within 2 x terminus_m) has the
--       stop (or shape point) farthest from its first stop as second checkpoint, and a trip
--       is counted only on the return to the first stop;
--   vehicles: buses with service km or a trip on the line that day.
CREATE FUNCTION rasd_open_data_bus_day(
    d date, tz text, terminus_m double precision, max_trip interval
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := d::timestamp AT TIME ZONE tz;
    hi timestamptz := (d + 1)::timestamp AT TIME ZONE tz;
    max_gap CONSTANT interval := INTERVAL '5 minutes';
BEGIN
    DELETE FROM open_data_bus_service_daily WHERE day = d;
    INSERT INTO open_data_bus_service_daily (day, route, km, trips, vehicles)
    WITH stop_lines AS (
        SELECT ls.route, ls.seq, s.lat, s.lon,
               first_value(s.lat) OVER w AS a_lat, first_value(s.lon) OVER w AS a_lon,
               last_value(s.lat) OVER w AS z_lat, last_value(s.lon) OVER w AS z_lon
        FROM line_stops ls JOIN bus_stops s ON s.stop_id = ls.stop_id
        WINDOW w AS (PARTITION BY ls.route ORDER BY ls.seq
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ),
    shape_lines AS (
        SELECT r.route, (p.ord - 1)::integer AS seq,
               (p.pt ->> 0)::double precision AS lat, (p.pt ->> 1)::double precision AS lon,
               (r.points -> 0 ->> 0)::double precision AS a_lat,
               (r.points -> 0 ->> 1)::double precision AS a_lon,
               (r.points -> -1 ->> 0)::double precision AS z_lat,
               (r.points -> -1 ->> 1)::double precision AS z_lon
        FROM route_shapes r, jsonb_array_elements(r.points) WITH ORDINALITY AS p (pt, ord)
        WHERE NOT EXISTS (SELECT 1 FROM line_stops ls WHERE ls.route = r.route)
    ),
    places AS (SELECT * FROM stop_lines UNION ALL SELECT * FROM shape_lines),
    lines AS (
        SELECT DISTINCT ON (route) route, a_lat, a_lon,
               rasd_open_data_distance_m(a_lat, a_lon, z_lat, z_lon) <= 2 * terminus_m AS loop,
               CASE WHEN rasd_open_data_distance_m(a_lat, a_lon, z_lat, z_lon) <= 2 * terminus_m
                    THEN lat ELSE z_lat END AS b_lat,
               CASE WHEN rasd_open_data_distance_m(a_lat, a_lon, z_lat, z_lon) <= 2 * terminus_m
                    THEN lon ELSE z_lon END AS b_lon
        FROM places
        ORDER BY route, rasd_open_data_distance_m(a_lat, a_lon, lat, lon) DESC, seq
    ),
    fixes AS MATERIALIZED (
        SELECT f.device_id, f.time, f.lat, f.lon, coalesce(f.route, b.route) AS route
        FROM vehicle_positions f
        JOIN devices b ON b.device_id = f.device_id AND b.fleet = 'bus'
        WHERE f.time >= lo - max_trip AND f.time < hi + max_gap
          AND coalesce(f.route, b.route) IS NOT NULL
    ),
    legs AS (
        SELECT x.route, x.device_id,
               rasd_open_data_distance_m(x.prev_lat, x.prev_lon, x.lat, x.lon) AS metres,
               extract(epoch FROM x.time - x.prev_time) AS seconds
        FROM (
            SELECT f.*, lag(f.time) OVER w AS prev_time, lag(f.lat) OVER w AS prev_lat,
                   lag(f.lon) OVER w AS prev_lon, lag(f.route) OVER w AS prev_route
            FROM fixes f
            WINDOW w AS (PARTITION BY f.device_id ORDER BY f.time)
        ) x
        WHERE x.prev_route = x.route AND x.prev_time >= lo AND x.prev_time < hi
          AND x.time - x.prev_time <= max_gap
    ),
    km AS (
        SELECT route, device_id, sum(metres) / 1000.0 AS km
        FROM legs
        WHERE metres / seconds * 3.6 BETWEEN 3 AND 120
        GROUP BY 1, 2
    ),
    passages AS (
        SELECT f.device_id, f.route, f.time, l.loop,
               CASE WHEN rasd_open_data_distance_m(l.a_lat, l.a_lon, f.lat, f.lon) <= terminus_m
                    THEN 'a'
                    WHEN rasd_open_data_distance_m(l.b_lat, l.b_lon, f.lat, f.lon) <= terminus_m
                    THEN 'b' END AS at
        FROM fixes f JOIN lines l ON l.route = f.route
    ),
    arrivals AS (
        SELECT y.route, y.device_id
        FROM (
            SELECT p.*, lag(p.at) OVER w AS prev_at, lag(p.time) OVER w AS prev_time
            FROM passages p
            WHERE p.at IS NOT NULL
            WINDOW w AS (PARTITION BY p.device_id, p.route ORDER BY p.time)
        ) y
        WHERE y.prev_at <> y.at AND (NOT y.loop OR y.at = 'a')
          AND y.time >= lo AND y.time < hi AND y.time - y.prev_time <= max_trip
    ),
    trips AS (SELECT route, device_id, count(*) AS trips FROM arrivals GROUP BY 1, 2)
    SELECT d, coalesce(k.route, t.route), coalesce(sum(k.km), 0),
           coalesce(sum(t.trips), 0)::integer, count(*)::integer
    FROM km k FULL JOIN trips t ON t.route = k.route AND t.device_id = k.device_id
    GROUP BY coalesce(k.route, t.route);
    PERFORM rasd_open_data_mark_day('bus_service', d);
END;
$$;
