"""Sinks: publish KPI snapshots to Redis (wallboards) and Prometheus (Grafana, alerts).

A sink takes one ``stream.snapshot.Snapshot`` at a time behind the ``Sink`` protocol of
``sinks.base``; it never sees raw events and never imports Faust.
"""

from sinks.base import Sink

__all__ = ["Sink"]
