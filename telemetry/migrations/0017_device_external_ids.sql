-- The identity a device protocol gives a device (Teltonika IMEI, OsmAnd id, OwnTracks USER/DEVICE,
-- LoRaWAN DevEUI), mapped to Rasd's device_id by the gateways. Unique when set; deferred so that
-- one import may move an identity from one device to another.
ALTER TABLE devices ADD COLUMN external_id text CHECK (external_id ~ '^[!-~]{1,64}$');
ALTER TABLE devices ADD CONSTRAINT devices_external_id_key UNIQUE (external_id)
    DEFERRABLE INITIALLY DEFERRED;
