"""Declarative automation conditions shared by every model family."""

from __future__ import annotations

import dagster as dg


def follows_upstream(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Run a partition when it is newly missing or an upstream of it updated, once its upstreams exist.

    Unlike ``eager()`` this covers every partition, not only the newest, so history that lands late
    (a backfilled day of files) flows through too. ``ignore`` names upstreams whose updates should
    not re-run this asset (e.g. a new champion should not re-score every past day).
    """
    deps_updated = dg.AutomationCondition.any_deps_updated()
    if ignore is not None:
        deps_updated = deps_updated.ignore(ignore)
    return (
        (dg.AutomationCondition.newly_missing() | deps_updated).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("follows upstream")


def retrain_on(cron_schedule: str) -> dg.AutomationCondition:
    """Train at most once per cron tick (after upstream data updated), and once when never trained."""
    first_time = (
        dg.AutomationCondition.missing()
        & dg.AutomationCondition.any_deps_updated().since(dg.AutomationCondition.newly_requested())
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("never trained")
    return (dg.AutomationCondition.on_cron(cron_schedule) | first_time).with_label(f"retrain on {cron_schedule}")


def promote_when_gates_pass() -> dg.AutomationCondition:
    """Follow the evaluation, but only when its blocking checks (the promotion gates) passed."""
    return (dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
        "evaluation passed its gates"
    )
