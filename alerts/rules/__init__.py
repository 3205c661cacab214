"""The alert rules: pure per-device state machines that call ``Lifecycle.rise`` and ``fall``."""
