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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-platform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help="land synthetic daily files for a model")
    sim.add_argument("--model", required=True, help="model spec name")
    sim.add_argument("--days", type=int, required=True, help="number of days to land")
    sim.add_argument("--start", type=_date, help="first day (default: DAYS days before today)")
    sim.add_argument("--drift", type=float, default=0.0, help="distribution shift, 0 = none, 1 = strong")
    sim.add_argument("--rows", type=int, default=2000, help="events per day")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--format", dest="file_format", default="mixed", choices=["mixed", "parquet", "csv"])

    rollback = commands.add_parser("rollback", help="point champion back at the previous champion")
    rollback.add_argument("--model", required=True)

    commands.add_parser("specs", help="list the registered model specs")
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
    if args.command == "specs":
        from mlops_platform.specs import discover_specs

        for spec in discover_specs():
            print(f"{spec.name}\t{spec.task}\t{spec.metric}\t{spec.description}")
        return 0
    try:
        spec = get_spec(args.model)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.command == "simulate":
        from mlops_platform.simulate import simulate

        start = args.start or dt.date.today() - dt.timedelta(days=args.days)
        try:
            landed = simulate(
                spec,
                settings.landing_root,
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
    raise AssertionError(args.command)


def _rollback(model: str, settings) -> int:
    import dagster as dg

    from mlops_platform.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def(f"{model}_rollback")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        reason = (
            failure.step_failure_data.error.message.strip()
            if failure and failure.step_failure_data.error
            else "see the run in the Dagster UI"
        )
        print(f"error: rollback of {model} failed: {reason}", file=sys.stderr)
        return 1
    for event in result.asset_materializations_for_node(f"{model}__rollback_champion"):
        print(event.description)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    from mlops_platform.exit_guard import exit_now

    exit_now(run(argv))
