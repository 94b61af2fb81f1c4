"""Declarative automation conditions shared by every model family.

Three are custom ``AutomationCondition`` subclasses that read the instance (``LabelsLanded``,
``DepsRequestedThisTick``, ``UpstreamNewerThanAsset``): they are evaluated in the code location, so
the automation sensor runs with ``use_user_code_server``.
"""

from __future__ import annotations

import datetime as dt

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


class LabelsLanded(dg.AutomationCondition):
    """True once some label has landed whose events have features: a first training would find rows.

    A training window ends at the newest label, so it holds labels once any label has landed. Label
    partitions ingested empty do not count, and with ``label_delay_days`` neither do labels whose
    event day (the label day minus the delay) has no features partition with rows: churn's first labels
    are for events two weeks before the first landed day, and joining them with features finds nothing.
    """

    def __init__(
        self,
        labels_key: dg.AssetKey | None = None,
        features_key: dg.AssetKey | None = None,
        label_delay_days: int | None = None,
    ):
        # None: the upstream of the evaluated asset whose key ends in "labels" / "features".
        self.labels_key = labels_key
        self.features_key = features_key
        self.label_delay_days = label_delay_days

    @property
    def name(self) -> str:
        return "labels_landed"

    @property
    def description(self) -> str:
        with_features = (
            "" if self.label_delay_days is None else f", events {self.label_delay_days} day(s) earlier featurized"
        )
        return f"a label partition holds rows{with_features}"

    def _upstream(self, context: dg.AutomationContext, given: dg.AssetKey | None, name: str) -> dg.AssetKey:
        if given is not None:
            return given
        parents = [k for k in context.asset_graph.get(context.key).parent_entity_keys if k.path[-1] == name]
        if len(parents) != 1:
            raise ValueError(
                f"{context.key.to_user_string()}: LabelsLanded needs the {name} key; "
                f"upstreams named {name!r}: {parents}"
            )
        return parents[0]

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.candidate_subset.is_empty:
            return dg.AutomationResult(context, context.get_empty_subset())
        instance = context.asset_graph_view.instance
        labelled = partitions_with_rows(instance, self._upstream(context, self.labels_key, "labels"))
        if labelled and self.label_delay_days is not None:
            featurized = partitions_with_rows(instance, self._upstream(context, self.features_key, "features"))
            delay = dt.timedelta(days=self.label_delay_days)
            labelled = {p for p in labelled if (dt.date.fromisoformat(p) - delay).isoformat() in featurized}
        return dg.AutomationResult(context, context.candidate_subset if labelled else context.get_empty_subset())


def partitions_with_rows(instance: dg.DagsterInstance, key: dg.AssetKey) -> set[str]:
    """The partitions of ``key`` whose newest materialization recorded at least one row."""
    seen: set[str | None] = set()
    with_rows: set[str] = set()
    cursor = None
    while True:
        result = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1000, cursor=cursor)
        for record in result.records:  # newest first: the first one seen per partition is its current state
            materialization = record.asset_materialization
            if materialization is None or materialization.partition in seen:
                continue
            seen.add(materialization.partition)
            rows = materialization.metadata.get("dagster/row_count")
            if materialization.partition is not None and rows is not None and int(rows.value) > 0:  # type: ignore[arg-type]
                with_rows.add(materialization.partition)
        if not result.has_more:
            return with_rows
        cursor = result.cursor


class DepsRequestedThisTick(dg.AutomationCondition):
    """True when an upstream of the asset is requested in this same evaluation, in another run.

    Dagster's ``will_be_requested`` only counts upstreams that run in the same run; a daily upstream
    of an unpartitioned asset runs apart, and reading it before that run finishes would fail.
    """

    @property
    def name(self) -> str:
        return "deps_requested_this_tick"

    @property
    def description(self) -> str:
        return "an upstream is requested in this evaluation"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        parents = context.asset_graph.get(context.key).parent_entity_keys
        requested = any(not subset.is_empty for key, subset in context.request_subsets_by_key.items() if key in parents)
        return dg.AutomationResult(context, context.candidate_subset if requested else context.get_empty_subset())


class UpstreamNewerThanAsset(dg.AutomationCondition):
    """True when an upstream materialized after the asset's latest materialization attempt began.

    Compared by event storage id (the order the instance recorded the events in), from the asset's
    newest planned materialization (written when its run starts, before it reads its inputs), so an
    upstream that updated while the asset was running counts as new. Unlike ``since(...)`` of two
    conditions, an upstream update and the asset's own update in the same evaluation interval are
    told apart.
    """

    @property
    def name(self) -> str:
        return "upstream_newer_than_asset"

    @property
    def description(self) -> str:
        return "an upstream materialized after this asset's last run began"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.candidate_subset.is_empty:
            return dg.AutomationResult(context, context.get_empty_subset())
        instance = context.asset_graph_view.instance
        parents = [k for k in context.asset_graph.get(context.key).parent_entity_keys if isinstance(k, dg.AssetKey)]
        records = {r.asset_entry.asset_key: r.asset_entry for r in instance.get_asset_records([context.key, *parents])}
        own = records.get(context.key)
        since = None
        if own is not None:
            since = own.last_planned_materialization_storage_id or own.last_materialization_storage_id
        newer = since is not None and any(
            (records[p].last_materialization_storage_id or 0) > since for p in parents if p in records
        )
        return dg.AutomationResult(context, context.candidate_subset if newer else context.get_empty_subset())


def retrain_on(
    cron_schedule: str,
    labels_key: dg.AssetKey | None = None,
    features_key: dg.AssetKey | None = None,
    label_delay_days: int | None = None,
) -> dg.AutomationCondition:
    """Train at the cron tick when upstream data updated since the last training; first train once labels exist.

    - Retraining: requested in the evaluation at (the first after) each tick of ``cron_schedule`` when
      an upstream updated since the asset last materialized. An upstream running or requested at the
      tick postpones it until that upstream finished, never to the next day's data; without new data
      the tick passes and nothing runs until the next tick.
    - First training (never materialized): as soon as a label has landed whose events have features
      (``LabelsLanded``; pass the spec's ``label_delay_days`` so that it can tell) and the
      upstreams' runs finished, never alongside an upstream still running or requested in the same
      evaluation (it would read features not yet written). Once per upstream update, so a failed first
      training is not requested again until new data arrives.
    """
    tick = dg.AutomationCondition.cron_tick_passed(cron_schedule)
    blocked = (
        dg.AutomationCondition.any_deps_in_progress() | DepsRequestedThisTick() | dg.AutomationCondition.in_progress()
    ).with_label("an upstream or the asset is running or requested")
    new_data = UpstreamNewerThanAsset()
    # The tick stays due while it is blocked; it is dropped once requested, or at the first evaluation
    # after the tick that found nothing blocked and nothing new to train on.
    due = tick.since(dg.AutomationCondition.newly_requested() | (~tick & ~blocked & ~new_data)).with_label(
        f"tick of {cron_schedule} due"
    )
    retrain = (due & new_data & ~blocked).with_label(f"at {cron_schedule}, new data since the last training")
    first_time = (
        dg.AutomationCondition.missing()
        & LabelsLanded(labels_key, features_key, label_delay_days)
        & dg.AutomationCondition.any_deps_updated().since(dg.AutomationCondition.newly_requested())
        & ~blocked
    ).with_label("never trained, labels landed")
    return (retrain | first_time).with_label(f"retrain on {cron_schedule}")


def promote_when_gates_pass() -> dg.AutomationCondition:
    """Follow the evaluation, but only when its blocking checks (the promotion gates) passed."""
    return (dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
        "evaluation passed its gates"
    )
