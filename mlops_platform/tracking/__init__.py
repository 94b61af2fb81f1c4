"""MLflow: experiment tracking and the model registry."""
