"""The features stage: the spec's feature functions over each day's raw events."""

import dagster as dg

from mlops_platform.assets.common import DELTA, TRANSIENT_RETRY, Frame, Stage, retry_only_transient
from mlops_platform.automation.conditions import follows_upstream
from mlops_platform.storage.delta import DAY_COLUMN
from mlops_platform.storage.io_manager import LAZY


def build_features(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec

    @dg.asset(
        key=stage.key("features"),
        group_name=stage.group,
        partitions_def=stage.partitions,
        io_manager_key=DELTA,
        ins={"raw": dg.AssetIn(stage.key("raw"), metadata=LAZY)},
        automation_condition=follows_upstream(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=TRANSIENT_RETRY,
        freshness_policy=stage.freshness,
        code_version=stage.code_version,
        kinds={"delta", "pandas"},
        metadata={"partition_column": DAY_COLUMN},
    )
    @retry_only_transient
    def features(context: dg.AssetExecutionContext, raw: Frame) -> Frame:
        """Point-in-time keyed features (entity, event time) of one day, computed from its raw events."""
        from mlops_platform.ml.features import compute_features
        from mlops_platform.storage.delta import DayBatches, PinnedDays

        context.add_output_metadata({"raw_delta_versions": dg.MetadataValue.json(raw.attrs.get("delta_versions", {}))})
        if not isinstance(raw, PinnedDays):  # invoked directly with a frame
            return compute_features(raw, spec)
        # A range run reads, computes and writes a batch of whole days at a time.
        return DayBatches((days, compute_features(frame, spec)) for days, frame in raw.batches())

    return features
