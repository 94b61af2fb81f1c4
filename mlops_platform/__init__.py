"""mlops-platform: an asset-based ML platform on Dagster."""
