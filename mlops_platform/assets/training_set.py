"""The training-set stage: labels of the window joined point-in-time with features, pinned versions."""

import dagster as dg

from mlops_platform.assets.common import DELTA, TRAINING_TAGS, TRANSIENT_RETRY, Frame, Stage, retry_only_transient
from mlops_platform.automation.conditions import retrain_on


def build_training_set(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec

    @dg.asset(
        key=stage.key("training_set"),
        group_name=stage.group,
        io_manager_key=DELTA,
        ins={"features": dg.AssetIn(stage.key("features")), "labels": dg.AssetIn(stage.key("labels"))},
        # At the spec's retrain hour given new data; the first training once labels with features landed.
        automation_condition=retrain_on(
            spec.retrain_cron,
            labels_key=stage.key("labels"),
            features_key=stage.key("features"),
            label_delay_days=spec.source.label_delay_days,
        ),
        retry_policy=TRANSIENT_RETRY,
        tags=TRAINING_TAGS,
        code_version=stage.code_version,
        kinds={"delta", "pandas"},
    )
    @retry_only_transient
    def training_set(context: dg.AssetExecutionContext, features: Frame, labels: Frame) -> Frame:
        """Labels of the training window joined point-in-time with features, split by entity hash."""
        from mlops_platform.ml.dataset import build_training_set

        built = build_training_set(features, labels, spec)
        start, end, joined = built.window_start, built.window_end, built.frame
        if joined.empty:
            raise ValueError(
                f"{spec.name}: no label between {start} and {end} has a feature row at or before its event"
            )
        counts = joined["split"].value_counts()
        context.add_output_metadata(
            {
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "features_delta_versions": dg.MetadataValue.json(features.attrs["delta_versions"]),
                "labels_delta_versions": dg.MetadataValue.json(labels.attrs["delta_versions"]),
                "labels_without_features": built.labels_without_features,
                # Older labels of an (entity, event time) replaced by a revision that landed later.
                "labels_superseded": built.labels_superseded,
                **{f"rows_{name}": int(counts.get(name, 0)) for name in ("train", "validation", "test")},
            }
        )
        return joined

    return training_set
