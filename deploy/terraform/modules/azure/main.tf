data "azurerm_client_config" "current" {}
data "azurerm_subscription" "current" {}

# Globally unique names (storage account, key vault, registry) need a stable random suffix.
resource "random_string" "suffix" {
  length  = 5
  lower   = true
  upper   = false
  numeric = true
  special = false
}

locals {
  # Postgres role of the MLflow backend, separate from the admin user Dagster runs as.
  mlflow_db_username = "mlflow"
  prefix             = "${var.name}-${var.environment}"
  compact            = replace(local.prefix, "-", "")

  # Cost Management groups costs by these tags; the budget filters on Stack.
  tags = merge(var.tags, {
    Project     = var.name
    Environment = var.environment
    Stack       = local.prefix
    CostCenter  = var.cost_center
    Owner       = var.owner
    ManagedBy   = "terraform"
  })

  storage_account_name = "${substr(local.compact, 0, 19)}${random_string.suffix.result}"
  key_vault_name       = "${substr(local.compact, 0, 19)}${random_string.suffix.result}"
  registry_name        = "${substr(local.compact, 0, 40)}${random_string.suffix.result}"

  container_name      = "mlops"
  lake_prefix         = "lake"
  mlflow_prefix       = "mlflow"
  compute_logs_prefix = "dagster/compute-logs"
  landing_prefix      = "landing"
  quarantine_prefix   = "quarantine"
  backups_prefix      = "backups"
}

resource "azurerm_resource_group" "this" {
  name     = "rg-${local.prefix}"
  location = var.location
  tags     = local.tags
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "log-${local.prefix}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}
