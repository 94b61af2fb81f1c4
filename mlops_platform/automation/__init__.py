"""Sensors, schedules, automation conditions and freshness."""
