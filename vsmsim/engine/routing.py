"""APIC destination routing: which ICR messages an IPI to a set of VPs takes.

Physical destinations take one ICR write per destination. Logical destinations can reach
several CPUs with one write, within the limits of the APIC mode:

- ``xapic-flat``: an 8-bit mask, at most 8 CPUs, one message for all of them;
- ``xapic-cluster``: 4-bit cluster and 4-bit mask, clusters of 4 CPUs (15 clusters);
- ``x2apic``: logical ID = cluster (ID >> 4) and a 16-bit mask, clusters of 16 CPUs.

VP i has logical position i in this model (APIC IDs numbered as the VPs), so a message
goes to each cluster that holds at least one destination.
"""

from __future__ import annotations

CLUSTER_SIZE = {"xapic-flat": 8, "xapic-cluster": 4, "x2apic": 16}


def cluster_of(vp: int, apic_mode: str) -> int:
    """The logical cluster of *vp* in *apic_mode* (all of xapic-flat is one cluster)."""
    if apic_mode == "xapic-flat":
        return 0
    return vp // CLUSTER_SIZE[apic_mode]


def logical_messages(rows, apic_mode: str):
    """Group ``(vp, irq)`` targets into one list per ICR message, in cluster order."""
    groups: dict[int, list] = {}
    for dest, irq in rows:
        groups.setdefault(cluster_of(dest, apic_mode), []).append((dest, irq))
    return [groups[k] for k in sorted(groups)]
