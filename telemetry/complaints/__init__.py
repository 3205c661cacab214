"""Citizens' complaints: the Open311 service catalogue and the national platform's import
format (pure contracts, no I/O; storage is telemetry/storage/complaints.py)."""
