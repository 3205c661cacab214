"""Tree checks over a whole register: every parent exists, no cycles, legal kind order (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from telemetry.equipment.records import PARENT_KINDS, AssetKind


@dataclass(frozen=True, kw_only=True)
class Node:
    """What the tree check needs of an asset, and where to point a person at it."""

    asset_id: str
    kind: AssetKind
    parent_id: str | None
    where: str  # "line 7", "feature 3", "in the register"


def tree_problems(nodes: Mapping[str, Node]) -> list[str]:
    """Every tree rule ``nodes`` (keyed by asset id) break, each message naming its place.

    Checked in this order, each node reported once: missing parent, cycle, kind order."""
    problems: list[str] = []
    in_cycle: set[str] = set()
    for node in nodes.values():
        if node.parent_id is None or node.asset_id in in_cycle:
            continue
        parent = nodes.get(node.parent_id)
        if parent is None:
            problems.append(
                f"{node.where}: parent_id {node.parent_id} of {node.asset_id} is no asset"
            )
            continue
        path = [node.asset_id]
        seen = {node.asset_id}
        current: Node | None = parent
        while current is not None and current.asset_id not in seen:
            path.append(current.asset_id)
            seen.add(current.asset_id)
            current = nodes.get(current.parent_id) if current.parent_id is not None else None
        if current is not None and current.asset_id == node.asset_id:
            in_cycle.update(path)
            loop = " → ".join([*path, node.asset_id])
            problems.append(f"{node.where}: {node.asset_id} is its own ancestor ({loop})")
            continue
        if parent.kind not in PARENT_KINDS[node.kind]:
            allowed = " or ".join(sorted(k.value for k in PARENT_KINDS[node.kind])) or "nothing"
            problems.append(
                f"{node.where}: {node.kind.value} {node.asset_id} must hang from {allowed}, "
                f"not from {parent.kind.value} {parent.asset_id}"
            )
    return problems
