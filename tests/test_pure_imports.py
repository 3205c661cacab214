"""The alert rules, the engine and the records and geometry they share import no I/O: loading
them in a fresh interpreter leaves the database driver, the MQTT client and the storage and
connection modules unloaded (the sans-I/O split: storage imports the records, never the reverse).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import alerts.rules

PURE = (
    "alerts.engine",
    "alerts.catalog",
    "alerts.partition",
    "alerts.lifecycle",
    "alerts.effects",
    "alerts.observations",
    *(f"alerts.rules.{m.name}" for m in pkgutil.iter_modules(alerts.rules.__path__)),
    "telemetry.geometry",
    "telemetry.alert_records",
    "telemetry.reference_data",
    "telemetry.months",
    "simulators.paths",
    "telemetry.complaints.services",
    "telemetry.complaints.chikaya",
    "telemetry.complaints.facts",
    "telemetry.complaints.records",
    "telemetry.complaints.matching",
    "telemetry.complaints.spatial_index",
    "api.open_data.feeds",
    "api.open_data.shaping",
    "api.open_data.schedule",
    "api.open_data.catalogue",
    "telemetry.i18n",
    "telemetry.i18n.catalogues",
)

#: Top-level packages and telemetry modules that do I/O (or only exist to).
IO_PACKAGES = ("psycopg", "psycopg_pool", "paho")
IO_MODULES = (
    "telemetry.storage",
    "telemetry.db",
    "telemetry.mqtt_client",
    "telemetry.mqtt_session",
)

_PROBE = """
import importlib, json, sys

def loaded():
    return sorted(
        name for name in sys.modules
        if name.split(".")[0] in {io_packages}
        or any(name == m or name.startswith(m + ".") for m in {io_modules})
    )

for module in {modules}:
    importlib.import_module(module)
pure = loaded()
# The probe must see I/O when there is some: a storage module brings the driver in.
importlib.import_module("telemetry.storage.reference")
print(json.dumps({{"pure": pure, "storage": loaded()}}))
"""


def _probe() -> dict[str, list[str]]:
    code = _PROBE.format(modules=list(PURE), io_packages=IO_PACKAGES, io_modules=IO_MODULES)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_rules_engine_records_and_geometry_import_no_io() -> None:
    result = _probe()
    assert result["pure"] == []
    assert "psycopg" in result["storage"]
    assert "telemetry.storage.reference" in result["storage"]


def test_every_rule_module_is_checked() -> None:
    rules = {m for m in PURE if m.startswith("alerts.rules.")}
    assert {"alerts.rules.outage", "alerts.rules.silence", "alerts.rules.collection"} <= rules
    assert len(rules) >= 10
