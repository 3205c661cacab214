"""The lighting equipment register (pure): assets in a tree, a model catalogue, their files.

Shaped on TALQ 2.7.1 (LuminaireType / DriverType / ControllerType and the *AssetFunction
attributes) and exported as FIWARE Smart Data Models ``Streetlight``, ``StreetlightModel`` and
``StreetlightControlCabinet`` NGSI-LD entities. No I/O here: storage is
``telemetry.storage.equipment``.
"""
