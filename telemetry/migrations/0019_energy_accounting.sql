-- Energy accounting (docs/energy_accounting.md): the utility's bills, the reconciled months
-- of every cabinet, and the measured baselines savings are counted against.
--
-- Cabinets, their meter_id, contracted power and tariff are the equipment register's (0018);
-- cabinet_id here is a register cabinet, or a registry circuit standing in for one, so it
-- carries no foreign key.

-- One bill per meter and billing period; a re-imported bill replaces its row. Periods of one
-- meter never overlap (checked by the import, which holds the table's lock while it does).
CREATE TABLE energy_bills (
    meter_id         text NOT NULL CHECK (meter_id ~ '^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$'),
    period_start     date NOT NULL,
    period_end       date NOT NULL,  -- last day billed, inclusive
    billed_kwh       double precision NOT NULL CHECK (billed_kwh >= 0),
    amount_dh        double precision NOT NULL CHECK (amount_dh >= 0),  -- VAT included
    estimated        boolean NOT NULL,
    index_start      double precision CHECK (index_start >= 0),
    index_end        double precision CHECK (index_end >= index_start),
    reactive_kvarh   double precision CHECK (reactive_kvarh >= 0),
    fixed_charges_dh double precision CHECK (fixed_charges_dh >= 0),
    vat_dh           double precision CHECK (vat_dh >= 0),
    bill_number      text,
    imported_at      timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, period_start, period_end),
    CHECK (period_end >= period_start AND period_end - period_start < 93),
    CHECK ((index_start IS NULL) = (index_end IS NULL))
);
CREATE INDEX energy_bills_period_idx ON energy_bills (period_end, period_start);

-- A cabinet's month as reconciled (telemetry.energy_accounting.reconcile.CabinetMonth);
-- a new run of a month replaces all its rows. flags: [{code, message, evidence}].
CREATE TABLE energy_reconciliations (
    month               date NOT NULL CHECK (extract(day FROM month) = 1),
    cabinet_id          text NOT NULL,
    district            text,
    meter_id            text,
    tariff              text,
    contracted_kw       double precision,
    lights              integer NOT NULL,
    lights_reporting    integer NOT NULL,
    connected_kw        double precision NOT NULL,
    burning_hours       double precision NOT NULL,
    modelled_kwh        double precision NOT NULL,
    lights_metered_kwh  double precision NOT NULL,
    cabinet_metered_kwh double precision,
    metered_kwh         double precision,
    metered_source      text CHECK (metered_source IN ('cabinet_meter', 'lights')),
    peak_kw             double precision,
    day_burning_kwh     double precision NOT NULL,
    bill_number         text,
    bill_period_start   date,
    bill_period_end     date,
    billed_kwh          double precision,
    billed_dh           double precision,
    bill_estimated      boolean,
    bill_metered_kwh    double precision,
    recomputed_dh       double precision,
    expected_dh         double precision,
    dimming_saved_kwh   double precision NOT NULL,
    retrofit_saved_kwh  double precision,
    saved_dh            double precision,
    saved_co2_kg        double precision NOT NULL,
    flags               jsonb NOT NULL DEFAULT '[]',
    notes               jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (month, cabinet_id)
);
CREATE INDEX energy_reconciliations_district_idx ON energy_reconciliations (month, district);

-- When each month was last reconciled, and with which tariff file and thresholds.
CREATE TABLE energy_reconciliation_runs (
    month         date PRIMARY KEY CHECK (extract(day FROM month) = 1),
    computed_at   timestamptz NOT NULL DEFAULT now(),
    tariff_source text NOT NULL,
    cabinets      integer NOT NULL,
    lights        integer NOT NULL,
    thresholds    jsonb NOT NULL
);

-- A cabinet's energy per burning hour measured before a retrofit (IPMVP option B): the
-- savings of later months are counted against it, adjusted for their nights' length.
CREATE TABLE energy_baselines (
    cabinet_id           text PRIMARY KEY,
    kwh_per_burning_hour double precision NOT NULL CHECK (kwh_per_burning_hour > 0),
    from_month           date NOT NULL,
    to_month             date NOT NULL CHECK (to_month >= from_month),
    months               integer NOT NULL CHECK (months > 0),
    created_at           timestamptz NOT NULL DEFAULT now()
);
