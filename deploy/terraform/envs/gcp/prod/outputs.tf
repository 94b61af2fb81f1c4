output "cluster_name" {
  description = "GKE cluster name."
  value       = module.platform.cluster_name
}

output "cluster_location" {
  description = "GKE cluster location."
  value       = module.platform.cluster_location
}

output "storage_root" {
  description = "MLOPS_STORAGE_ROOT."
  value       = module.platform.storage_root
}

output "mlflow_artifact_root" {
  description = "MLOPS_MLFLOW_ARTIFACT_ROOT."
  value       = module.platform.mlflow_artifact_root
}

output "registry_url" {
  description = "Artifact Registry repository URL."
  value       = module.platform.registry_url
}

output "db_password_secret" {
  description = "Secret Manager secret with the Postgres password."
  value       = module.platform.db_password_secret
}

output "vertex_service_account_email" {
  description = "Service account of Vertex AI endpoints."
  value       = module.platform.vertex_service_account_email
}

output "node_pools" {
  description = "Node pool label and spot taint."
  value       = module.platform.node_pools
}

output "helm_env" {
  description = "Placeholders for deploy/helm (see deploy/README.md)."
  value       = module.platform.helm_env
}
