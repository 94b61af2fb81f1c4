# Workload identity: each Kubernetes service account federates with one user-assigned identity
# through the AKS OIDC issuer; no secrets or keys. Blob access is granted on the container only,
# and narrowed to the mlflow/ prefix with an ABAC condition where that is all an identity needs.

locals {
  # Read/write/delete data actions only on blobs under mlflow/ (other actions unaffected).
  mlflow_prefix_condition = <<-EOT
    (
     (
      !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})
      AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
      AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})
      AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})
     )
     OR
     (
      @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith '${local.mlflow_prefix}/'
     )
    )
  EOT

  federated = {
    dagster = var.dagster_service_account
    mlflow  = var.mlflow_service_account
  }
}

resource "azurerm_user_assigned_identity" "workload" {
  for_each = local.federated

  name                = "id-${local.prefix}-${each.key}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "workload" {
  for_each = local.federated

  # user_assigned_identity_id exists from azurerm 4.65.0 (the versions.tf floor); the
  # resource_group_name argument is deprecated in every 4.x and not set.
  name                      = "${each.key}-${var.k8s_namespace}"
  user_assigned_identity_id = azurerm_user_assigned_identity.workload[each.key].id
  issuer                    = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject                   = "system:serviceaccount:${var.k8s_namespace}:${each.value}"
  audience                  = ["api://AzureADTokenExchange"]
}

# Dagster: the whole container (lake, artifacts, compute logs, landing zone, quarantine).
resource "azurerm_role_assignment" "dagster_blob" {
  scope                = azurerm_storage_container.data.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.workload["dagster"].principal_id
}

# The landing sensor reads and deletes the BlobCreated events of the landing queue (landing.tf);
# it cannot add messages or touch any other queue.
resource "azurerm_role_assignment" "dagster_landing_queue" {
  scope                = azurerm_storage_queue.landing_events.id
  role_definition_name = "Storage Queue Data Message Processor"
  principal_id         = azurerm_user_assigned_identity.workload["dagster"].principal_id
}

# Dagster reads the Postgres password through the Secrets Store CSI driver if you choose to sync it
# that way (see deploy/README.md).
resource "azurerm_role_assignment" "dagster_db_secret" {
  scope                = azurerm_key_vault_secret.db_password.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.workload["dagster"].principal_id
}

resource "azurerm_role_assignment" "mlflow_blob" {
  scope                = azurerm_storage_container.data.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.workload["mlflow"].principal_id
  condition_version    = "2.0"
  condition            = local.mlflow_prefix_condition
}

# Drift, performance and retrain figures go to Azure Monitor as custom metrics (namespace
# mlops-platform, mlops_platform/profiles/metrics.py) on one Azure resource in the stack's region:
# the AKS cluster that runs the code server, runs and steps producing them (the module creates no
# Azure ML workspace; a resource group cannot hold custom metrics). The grant is on that cluster
# only, not on the resource group: publishing there would let Dagster add series to every
# resource of the stack (Key Vault, Postgres, storage) and confuse their metric alerts.
resource "azurerm_role_assignment" "dagster_metrics" {
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_user_assigned_identity.workload["dagster"].principal_id
}

# --- Azure ML managed online endpoints ---------------------------------------------------------

resource "azurerm_user_assigned_identity" "azureml_endpoint" {
  name                = "id-${local.prefix}-azureml-endpoint"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "azureml_endpoint_blob" {
  scope                = azurerm_storage_container.data.id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.azureml_endpoint.principal_id
  condition_version    = "2.0"
  condition            = local.mlflow_prefix_condition
}

resource "azurerm_role_assignment" "azureml_endpoint_acr_pull" {
  scope                = azurerm_container_registry.this.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.azureml_endpoint.principal_id
}

# Dagster attaches the endpoint identity to the deployments it creates ...
resource "azurerm_role_assignment" "dagster_assigns_endpoint_identity" {
  scope                = azurerm_user_assigned_identity.azureml_endpoint.id
  role_definition_name = "Managed Identity Operator"
  principal_id         = azurerm_user_assigned_identity.workload["dagster"].principal_id
}

# ... and manages online endpoints in the workspace, when one is given.
resource "azurerm_role_assignment" "dagster_azureml" {
  count = var.azureml_workspace_id == null ? 0 : 1

  scope                = var.azureml_workspace_id
  role_definition_name = "AzureML Data Scientist"
  principal_id         = azurerm_user_assigned_identity.workload["dagster"].principal_id
}
