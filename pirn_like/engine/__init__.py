"""The engine: plans runs, schedules knots by readiness, records lineage and events."""
