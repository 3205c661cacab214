"""Citizens' complaints, pure (no I/O): the Open311 service catalogue (``services``), the
national platform's import format (``chikaya``), the records storage reads and writes
(``records``, ``facts``), the linking rules (``matching``) and the point index they search
(``spatial_index``). SQL: telemetry/storage/complaints.py; HTTP, CLI and the linker's I/O:
api/open311/."""
