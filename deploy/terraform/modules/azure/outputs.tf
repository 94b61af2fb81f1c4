output "resource_group_name" {
  description = "Resource group of the stack."
  value       = azurerm_resource_group.this.name
}

output "cluster_name" {
  description = "AKS cluster name (private: use az aks command invoke, or a VNet-connected host)."
  value       = azurerm_kubernetes_cluster.this.name
}

output "oidc_issuer_url" {
  description = "AKS OIDC issuer (workload identity federation)."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "storage_account_name" {
  description = "Data storage account."
  value       = azurerm_storage_account.data.name
}

output "container_name" {
  description = "Blob container holding lake/, mlflow/, dagster/compute-logs/, landing/ and quarantine/."
  value       = azurerm_storage_container.data.name
}

output "landing_queue_url" {
  description = "MLOPS_LANDING_QUEUE: Storage Queue receiving the BlobCreated events of landing/ (Event Grid)."
  value       = azurerm_storage_queue.landing_events.url
}

output "storage_root" {
  description = "MLOPS_STORAGE_ROOT: root URI of the Delta lake (account name in AZURE_STORAGE_ACCOUNT_NAME)."
  value       = "az://${azurerm_storage_container.data.name}/${local.lake_prefix}"
}

output "mlflow_artifact_root" {
  description = "MLOPS_MLFLOW_ARTIFACT_ROOT: MLflow artifact store (MLflow's wasbs:// scheme)."
  value       = "wasbs://${azurerm_storage_container.data.name}@${azurerm_storage_account.data.name}.blob.core.windows.net/${local.mlflow_prefix}"
}

output "registry_login_server" {
  description = "Container registry login server (images user-code and serving)."
  value       = azurerm_container_registry.this.login_server
}

output "db_host" {
  description = "Postgres host name (resolves to the private endpoint inside the VNet)."
  value       = azurerm_postgresql_flexible_server.this.fqdn
}

output "db_username" {
  description = "Postgres admin user, the one Dagster runs as."
  value       = azurerm_postgresql_flexible_server.this.administrator_login
}

output "key_vault_name" {
  description = "Key Vault holding the platform key and the Postgres passwords (secrets postgres-password, postgres-mlflow-password)."
  value       = azurerm_key_vault.this.name
}

output "dagster_identity_client_id" {
  description = "Client id of the Dagster workload identity (service account annotation)."
  value       = azurerm_user_assigned_identity.workload["dagster"].client_id
}

output "mlflow_identity_client_id" {
  description = "Client id of the MLflow workload identity."
  value       = azurerm_user_assigned_identity.workload["mlflow"].client_id
}

output "azureml_endpoint_identity_id" {
  description = "Resource id of the identity Azure ML online endpoints run as (reads mlflow/ artifacts, pulls the serving image)."
  value       = azurerm_user_assigned_identity.azureml_endpoint.id
}

output "azure_monitor_resource_id" {
  description = "MLOPS_AZURE_MONITOR_RESOURCE_ID: the resource (the AKS cluster) the platform's custom metrics are published on."
  value       = azurerm_kubernetes_cluster.this.id
}

output "node_pools" {
  description = "Node label key/values and the spot taints that the Helm values select and tolerate."
  value = {
    label_key    = "mlops-platform/pool"
    system_value = "system"
    spot_value   = "spot"
    spot_taint   = { key = "mlops-platform/pool", value = "spot", effect = "NoSchedule" }
    extra_taint  = { key = "kubernetes.azure.com/scalesetpriority", value = "spot", effect = "NoSchedule" }
  }
}

output "helm_env" {
  description = "Values substituted into deploy/helm (envsubst placeholders); see deploy/README.md."
  value = {
    CLOUD_REGION               = azurerm_resource_group.this.location
    AZURE_TENANT_ID            = data.azurerm_client_config.current.tenant_id
    AZURE_SUBSCRIPTION_ID      = data.azurerm_client_config.current.subscription_id
    DAGSTER_WORKLOAD_IDENTITY  = azurerm_user_assigned_identity.workload["dagster"].client_id
    MLFLOW_WORKLOAD_IDENTITY   = azurerm_user_assigned_identity.workload["mlflow"].client_id
    USER_CODE_IMAGE_REPOSITORY = "${azurerm_container_registry.this.login_server}/user-code"
    SERVING_IMAGE_REPOSITORY   = "${azurerm_container_registry.this.login_server}/serving"
    DB_HOST                    = azurerm_postgresql_flexible_server.this.fqdn
    DB_USERNAME                = azurerm_postgresql_flexible_server.this.administrator_login
    MLFLOW_DB_USERNAME         = local.mlflow_db_username
    STORAGE_ACCOUNT            = azurerm_storage_account.data.name
    BUCKET                     = azurerm_storage_container.data.name
    COMPUTE_LOGS_PREFIX        = local.compute_logs_prefix
    MLOPS_STORAGE_ROOT         = "az://${azurerm_storage_container.data.name}/${local.lake_prefix}"
    MLOPS_MLFLOW_ARTIFACT_ROOT = "wasbs://${azurerm_storage_container.data.name}@${azurerm_storage_account.data.name}.blob.core.windows.net/${local.mlflow_prefix}"
    BACKUP_ROOT                = "az://${azurerm_storage_container.data.name}/${local.backups_prefix}"
    LANDING_QUEUE_URL          = azurerm_storage_queue.landing_events.url
    AZUREML_ENDPOINT_IDENTITY  = azurerm_user_assigned_identity.azureml_endpoint.id
    AZURE_MONITOR_RESOURCE_ID  = azurerm_kubernetes_cluster.this.id
  }
}

output "prefixes" {
  description = "Key prefixes inside the data bucket/container: Delta lake, MLflow artifacts, Dagster compute logs, landing zone, quarantine, registry exports."
  value = {
    lake         = local.lake_prefix
    mlflow       = local.mlflow_prefix
    compute_logs = local.compute_logs_prefix
    landing      = local.landing_prefix
    quarantine   = local.quarantine_prefix
    backups      = local.backups_prefix
  }
}

output "mlflow_db_username" {
  description = "Postgres user of the MLflow backend (created by the mlflow-database Job)."
  value       = local.mlflow_db_username
}
