"""Pure ML logic: no Dagster imports here, so every function is tested directly."""
