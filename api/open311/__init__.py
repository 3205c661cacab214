"""Citizens' complaints in the API: the Open311 GeoReport v2 endpoint (``/open311/v2``), the
operators' view (``/api/v1/complaints``), the linker's I/O and the background linking of
pending complaints (``linker_task``, ``desk``), and the ``python -m api complaints`` command
(``cli``) (docs/open311.md)."""
