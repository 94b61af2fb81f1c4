"""The training-set stage: labels of the window joined point-in-time with features, pinned versions."""

import dagster as dg

from mlops_platform.assets.common import DELTA, TRAINING_TAGS, TRANSIENT_RETRY, Frame, Stage, retry_only_transient
from mlops_platform.automation.conditions import retrain_on
from mlops_platform.storage.io_manager import LAZY


def build_training_set(stage: Stage) -> dg.AssetsDefinition:
    spec = stage.spec

    @dg.asset(
        key=stage.key("training_set"),
        group_name=stage.group,
        io_manager_key=DELTA,
        ins={
            "features": dg.AssetIn(stage.key("features"), metadata=LAZY),
            "labels": dg.AssetIn(stage.key("labels"), metadata=LAZY),
        },
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
        from mlops_platform.ml.dataset import StreamedTrainingSet
        from mlops_platform.storage.delta import TableStream

        # Out of core: the window is joined batch by batch of event days and streamed into one commit.
        built = StreamedTrainingSet(features, labels, spec)
        start, end = built.window_start, built.window_end

        def frames():
            produced = False
            for frame in built():
                produced = True
                yield frame
            if not produced:
                raise ValueError(
                    f"{spec.name}: no label between {start} and {end} has a feature row at or before its event"
                )

        def summary() -> dict:
            return {
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "features_delta_versions": dg.MetadataValue.json(features.attrs["delta_versions"]),
                "labels_delta_versions": dg.MetadataValue.json(labels.attrs["delta_versions"]),
                "labels_without_features": built.labels_without_features,
                # Older labels of an (entity, event time) replaced by a revision that landed later.
                "labels_superseded": built.labels_superseded,
                **{f"rows_{name}": built.split_rows[name] for name in ("train", "validation", "test")},
            }

        return TableStream(frames, summary=summary)

    return training_set
