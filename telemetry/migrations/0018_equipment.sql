-- The lighting equipment register (TALQ-shaped): a model catalogue, assets in a tree
-- (cabinet → circuit → pole → luminaire → driver / controller) and each asset's history.
-- Tree rules beyond one row (kind order, no cycles) are checked by telemetry.equipment.tree
-- inside the importing transaction; these constraints keep single rows honest.

CREATE TABLE equipment_models (
    model_id            text PRIMARY KEY CHECK (model_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    kind                text NOT NULL CHECK (kind IN ('luminaire', 'driver', 'controller')),
    manufacturer        text NOT NULL,
    model               text NOT NULL,
    rated_power_w       double precision CHECK (rated_power_w >= 0),
    power_at_min_dim_w  double precision CHECK (power_at_min_dim_w >= 0),
    rated_life_h        integer CHECK (rated_life_h > 0),
    warranty_years      integer CHECK (warranty_years BETWEEN 0 AND 50),
    replaceable_on_site boolean,
    light_source        text,
    luminous_flux_lm    integer CHECK (luminous_flux_lm >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Lets an asset's (model_id, kind) reference a model of its own kind.
    UNIQUE (model_id, kind)
);

CREATE TABLE equipment_assets (
    asset_id       text PRIMARY KEY CHECK (asset_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    kind           text NOT NULL
        CHECK (kind IN ('cabinet', 'circuit', 'pole', 'luminaire', 'driver', 'controller')),
    -- Deferred, so one import may list children before their parents.
    parent_id      text REFERENCES equipment_assets (asset_id) DEFERRABLE INITIALLY DEFERRED,
    label          text,
    device_id      text REFERENCES devices (device_id) ON DELETE SET NULL,
    model_id       text,
    serial         text,
    supplier       text,
    project_id     text,
    installed_on   date,
    warranty_until date,
    lat            double precision CHECK (lat BETWEEN -90 AND 90),
    lon            double precision CHECK (lon BETWEEN -180 AND 180),
    district       text,
    meter_id       text,
    contracted_kw  double precision CHECK (contracted_kw > 0),
    tariff         text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (model_id, kind) REFERENCES equipment_models (model_id, kind)
        DEFERRABLE INITIALLY DEFERRED,
    CHECK ((kind = 'cabinet') = (parent_id IS NULL)),
    CHECK (kind = 'cabinet' OR (meter_id IS NULL AND contracted_kw IS NULL AND tariff IS NULL)),
    CHECK ((lat IS NULL) = (lon IS NULL)),
    CHECK (warranty_until >= installed_on),
    -- Deferred so that one import may move a device or meter from one asset to another.
    UNIQUE (device_id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (meter_id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX equipment_assets_parent_idx ON equipment_assets (parent_id);
CREATE INDEX equipment_assets_kind_idx ON equipment_assets (kind);
CREATE INDEX equipment_assets_district_idx ON equipment_assets (district);
CREATE INDEX equipment_assets_model_idx ON equipment_assets (model_id);
CREATE INDEX equipment_assets_project_idx ON equipment_assets (project_id);

-- Generic history: parts installed and removed (by serial) today; work orders, inspections and
-- the like later, each naming its origin in source / source_ref (a work order's id). Faults
-- and operating hours are not copied here: they are read from light_faults and light_energy.
CREATE TABLE equipment_events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Deferred: an import writes a new asset's first events before the asset itself.
    asset_id    text NOT NULL REFERENCES equipment_assets (asset_id) DEFERRABLE INITIALLY DEFERRED,
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z_]{0,31}$'),
    serial      text,
    model_id    text REFERENCES equipment_models (model_id),
    detail      text,
    source      text NOT NULL CHECK (source ~ '^[a-z][a-z_]{0,31}$'),
    source_ref  text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX equipment_events_asset_idx ON equipment_events (asset_id, at);
CREATE INDEX equipment_events_serial_idx ON equipment_events (serial) WHERE serial IS NOT NULL;

-- Which circuit and cabinet each measured asset (a light's luminaire, a cabinet's meter)
-- belongs to, walking up the tree: energy accounting groups lights by cabinet with it.
CREATE VIEW equipment_device_cabinets AS
WITH RECURSIVE chain AS (
    SELECT a.device_id, a.asset_id AS measured_id, a.asset_id, a.kind, a.parent_id, 0 AS depth
    FROM equipment_assets a
    WHERE a.device_id IS NOT NULL
    UNION ALL
    SELECT c.device_id, c.measured_id, p.asset_id, p.kind, p.parent_id, c.depth + 1
    FROM chain c
    JOIN equipment_assets p ON p.asset_id = c.parent_id
    WHERE c.depth < 8
)
SELECT device_id,
       measured_id AS asset_id,
       max(asset_id) FILTER (WHERE kind = 'circuit') AS circuit_id,
       max(asset_id) FILTER (WHERE kind = 'cabinet') AS cabinet_id
FROM chain
GROUP BY device_id, measured_id;
