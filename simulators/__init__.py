"""Device simulators for Rasd: Marrakech's buses, garbage trucks and streetlights.

Pure domain logic (movement, solar, energy, faults, GPS defects) lives apart from I/O
(MQTT publishing, recordings); ``python -m simulators`` is the entry point.
"""
