"""The mlops-platform command."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _count(value: str) -> int:
    """A whole number of at least 1 (days, rows)."""
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} must be at least 1")
    return number


def _version(value: str) -> int:
    """A Delta table version: a whole number from 0."""
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a table version (a whole number)") from exc
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is not a table version: versions count from 0")
    return number


def _shift(value: str) -> float:
    """A distribution shift: a finite number from 0 (none)."""
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from exc
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number from 0 (none) up (1 = strong)")
    return number


def _timestamp(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-platform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help="land synthetic daily files for a model")
    sim.add_argument("--model", required=True, help="model spec name")
    sim.add_argument("--days", type=_count, required=True, help="number of days to land")
    sim.add_argument("--start", type=_date, help="first day (default: DAYS days before today)")
    sim.add_argument("--drift", type=_shift, default=0.0, help="distribution shift, 0 = none, 1 = strong")
    sim.add_argument("--rows", type=_count, default=2000, help="events per day")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--format", dest="file_format", default="mixed", choices=["mixed", "parquet", "csv"])

    rollback = commands.add_parser("rollback", help="point champion back at the previous champion")
    rollback.add_argument("--model", required=True)

    commands.add_parser("specs", help="list the registered model specs")

    for action, what in (
        ("approve", "let a challenger that passed its gates become champion"),
        ("reject", "refuse it"),
    ):
        decide = commands.add_parser(action, help=f"{what} (specs with requires_approval)")
        decide.add_argument("--model", required=True, help="model spec name")
        decide.add_argument("--version", type=_count, required=True, help="registered model version")
        decide.add_argument("--by", required=True, help="who decides (recorded on the version and its card)")

    from mlops_platform.serving.cli import add_serve_parser

    add_serve_parser(commands)

    delta = commands.add_parser("delta", help="Delta table operations").add_subparsers(
        dest="delta_command", required=True
    )
    restore = delta.add_parser("restore", help="restore a Delta table to an earlier version, as a new commit")
    where = restore.add_mutually_exclusive_group(required=True)
    where.add_argument("--table", help="table URI or path")
    where.add_argument("--asset", help="asset key of a table in the lake, e.g. churn/features")
    when = restore.add_mutually_exclusive_group(required=True)
    when.add_argument("--version", type=_version)
    when.add_argument("--timestamp", type=_timestamp, help="ISO 8601, e.g. 2026-11-28T06:00:00Z")

    registry = commands.add_parser("registry", help="MLflow registry backup").add_subparsers(
        dest="registry_command", required=True
    )
    export = registry.add_parser("export", help="write models, versions, aliases, tags and files")
    export.add_argument("--to", dest="destination", required=True, help="folder path or bucket URI")
    export.add_argument("--model", action="append", help="only this model (repeatable)")
    load = registry.add_parser("import", help="recreate an export in an empty registry")
    load.add_argument("--from", dest="source", required=True, help="folder path or bucket URI of an export")
    load.add_argument(
        "--restore-aliases",
        action="store_true",
        help="also set champion/challenger as exported (recorded in the model's mlops.aliases_restored tag); "
        "by default the target's gates decide them",
    )
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from mlops_platform.settings import Settings, SettingsError
    from mlops_platform.specs import get_spec

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from mlops_platform.serving.cli import run_serve

        return run_serve(args)
    if args.command == "delta":
        return _delta_restore(args, settings)
    if args.command == "registry":
        return _registry(args, settings)
    if args.command == "specs":
        from mlops_platform.specs import discover_specs

        for spec in discover_specs(settings.spec_modules):
            print(f"{spec.name}\t{spec.task}\t{spec.metric}\t{spec.description}")
        return 0
    try:
        from mlops_platform.specs import discover_specs as _discover

        spec = get_spec(args.model, _discover(settings.spec_modules))
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.command == "simulate":
        from mlops_platform.simulate import simulate

        start = args.start or dt.date.today() - dt.timedelta(days=args.days)
        if args.start is None and start < spec.start_date:
            most = (dt.date.today() - spec.start_date).days
            print(
                f"error: --days {args.days} reaches back to {start}, before {spec.name}'s first partition "
                f"({spec.start_date}): give at most --days {most}, or a --start",
                file=sys.stderr,
            )
            return 2
        try:
            landed = simulate(
                spec,
                settings.cloud.landing_zone(settings.landing_limits),
                start=start,
                days=args.days,
                drift=args.drift,
                rows=args.rows,
                seed=args.seed,
                file_format=args.file_format,
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for day in landed:
            print(f"{day.day}\t{day.rows} rows\t" + " ".join(str(p) for p in day.files))
        return 0
    if args.command == "rollback":
        return _rollback(spec.name, settings)
    if args.command in ("approve", "reject"):
        return _decide(args.command, spec, str(args.version), args.by, settings)
    raise AssertionError(args.command)


def _decide(action: str, spec, version: str, by: str, settings) -> int:
    """Record a person's decision on a version (MLflow tags) and report it to the instance as a
    materialization of ``<model>/approval``, which re-runs the champion at the next automation tick."""
    import dagster as dg
    from dagster._core.errors import DagsterHomeNotSetError

    from mlops_platform.settings import resources_for
    from mlops_platform.tracking.registry import RegistryError

    _quiet_libraries()
    if not spec.requires_approval:
        print(
            f"error: {spec.name} does not require approval (requires_approval is false in its spec): "
            "its champion moves when the gates pass",
            file=sys.stderr,
        )
        return 2
    try:
        instance = dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        print(
            "error: DAGSTER_HOME is not set: set it to the Dagster instance folder the UI uses, "
            "so the decision reaches the champion",
            file=sys.stderr,
        )
        return 2
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        message, changed = resources_for(settings)["registry"].decide_approval(
            spec.registered_model_name, version, action, by, at
        )
    except RegistryError as exc:
        print(f"error: {action} refused: {exc}", file=sys.stderr)
        return 1
    with instance:
        if changed:
            decision = "approved" if action == "approve" else "rejected"
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey([spec.name, "approval"]),
                    description=message,
                    metadata={"model_version": int(version), "decision": decision, "by": by.strip(), "at": at},
                )
            )
    print(message)
    if changed and action == "approve":
        print(f"the champion of {spec.name} moves to version {version} at the next automation tick")
    return 0


def _delta_restore(args: argparse.Namespace, settings) -> int:
    import dagster as dg

    from mlops_platform.settings import resources_for
    from mlops_platform.storage.delta import RestoreTargetError, restore_table

    lake = resources_for(settings)["lake"]
    uri = args.table or lake.uri(dg.AssetKey(args.asset.strip("/").split("/")))
    try:
        version = restore_table(
            uri, version=args.version, timestamp=args.timestamp, storage_options=lake.storage_options
        )
    except RestoreTargetError as exc:  # a version or time the table does not have: a bad argument
        flag = f"--version {args.version}" if args.version is not None else f"--timestamp {args.timestamp.isoformat()}"
        print(f"error: {flag}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - any failure is reported with the table it concerns
        print(f"error: cannot restore {uri}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    target = f"version {args.version}" if args.version is not None else args.timestamp.isoformat()
    print(f"restored {uri} to {target} as new version {version}")
    return 0


def _quiet_libraries() -> None:
    """Keep a terminal command's output to its answer: no MLflow INFO lines, no beta warnings."""
    import logging
    import os
    import warnings

    # mlflow sets its loggers' level from this variable when it is imported (INFO by default).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"dagster_mlflow(\..*)?")
    try:
        from dagster import BetaWarning
    except ImportError:  # pragma: no cover - older dagster
        return
    warnings.filterwarnings("ignore", category=BetaWarning)


def _registry(args: argparse.Namespace, settings) -> int:
    from mlops_platform.settings import resources_for
    from mlops_platform.tracking.backup import BackupArgumentError, BackupError, export_registry, import_registry
    from mlops_platform.tracking.registry import redact_uri

    _quiet_libraries()
    registry = resources_for(settings)["registry"]
    try:
        if args.registry_command == "export":
            summary = export_registry(registry, args.destination, args.model)
            verb = "exported to"
        else:
            summary = import_registry(registry, args.source, restore_aliases=args.restore_aliases)
            verb = "imported from"
    except BackupArgumentError as exc:
        print(f"error: {redact_uri(str(exc))}", file=sys.stderr)
        return 2
    except BackupError as exc:
        print(f"error: {redact_uri(str(exc))}", file=sys.stderr)
        return 1
    for name, count in summary.models.items():
        print(f"{name}: {count} version(s) {verb} {summary.location}")
    return 0


def _rollback(model: str, settings) -> int:
    import dagster as dg
    from dagster._core.errors import DagsterHomeNotSetError

    from mlops_platform.definitions import build_definitions
    from mlops_platform.settings import resources_for
    from mlops_platform.tracking.registry import RegistryError, redact_uri

    _quiet_libraries()
    # Check before starting a run: a refusal is one line, not a failed run's logs and traceback.
    try:
        resources_for(settings)["registry"].rollback_target(model)
    except RegistryError as exc:
        print(f"error: rollback of {model} refused: {exc}", file=sys.stderr)
        return 1
    job = build_definitions(settings).resolve_job_def(f"{model}_rollback")
    try:
        instance = dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        print(
            "error: DAGSTER_HOME is not set: set it to the Dagster instance folder the UI uses, "
            "so the rollback is recorded there",
            file=sys.stderr,
        )
        return 2
    with instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            # The run's events go to the instance (the UI); the terminal gets the outcome below.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        data = failure.step_failure_data if failure else None
        if data and data.user_failure_data and data.user_failure_data.description:
            reason = data.user_failure_data.description
        elif data and data.error:
            reason = data.error.message.strip().splitlines()[0]
        else:
            reason = "see the run in the Dagster UI"
        print(f"error: rollback of {model} failed: {redact_uri(reason)}", file=sys.stderr)
        return 1
    for event in result.asset_materializations_for_node(f"{model}__rollback_champion"):
        print(event.description)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    import os

    from mlops_platform.exit_guard import exit_now

    # A terminal command: MLflow's per-file download progress bars would bury the answer.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    exit_now(run(argv))
