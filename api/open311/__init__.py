"""Citizens' complaints in the API: the Open311 GeoReport v2 endpoint (``/open311/v2``), the
operators' view (``/api/v1/complaints``) and the background linking of pending complaints
(docs/open311.md)."""
