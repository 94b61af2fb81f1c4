output "resource_group_name" {
  description = "Resource group of the stack."
  value       = module.platform.resource_group_name
}

output "cluster_name" {
  description = "AKS cluster name."
  value       = module.platform.cluster_name
}

output "storage_root" {
  description = "MLOPS_STORAGE_ROOT."
  value       = module.platform.storage_root
}

output "mlflow_artifact_root" {
  description = "MLOPS_MLFLOW_ARTIFACT_ROOT."
  value       = module.platform.mlflow_artifact_root
}

output "landing_queue_url" {
  description = "MLOPS_LANDING_QUEUE (also LANDING_QUEUE_URL in helm_env)."
  value       = module.platform.landing_queue_url
}

output "registry_login_server" {
  description = "Container registry login server."
  value       = module.platform.registry_login_server
}

output "key_vault_name" {
  description = "Key Vault with the Postgres password."
  value       = module.platform.key_vault_name
}

output "azureml_endpoint_identity_id" {
  description = "Identity of Azure ML online endpoints."
  value       = module.platform.azureml_endpoint_identity_id
}

output "azure_monitor_resource_id" {
  description = "MLOPS_AZURE_MONITOR_RESOURCE_ID (also AZURE_MONITOR_RESOURCE_ID in helm_env)."
  value       = module.platform.azure_monitor_resource_id
}

output "node_pools" {
  description = "Node pool label and spot taints."
  value       = module.platform.node_pools
}

output "helm_env" {
  description = "Placeholders for deploy/helm (see deploy/README.md)."
  value       = module.platform.helm_env
}
