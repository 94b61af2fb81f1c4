# Azure Database for PostgreSQL flexible server: reachable only through a private endpoint,
# TLS required (server default require_secure_transport=on), backups with point-in-time restore,
# geo-redundant backups and zone-redundant HA in prod, a delete lock as deletion protection.

resource "random_password" "db" {
  length           = 32
  special          = true
  override_special = "-_" # URL-safe: the password is embedded in the MLflow backend-store URI
}

resource "azurerm_postgresql_flexible_server" "this" {
  #checkov:skip=CKV_AZURE_136:Geo-redundant backup is the db_geo_redundant_backup variable: on in prod tfvars (asserted by tests/deploy), off in dev.
  name                          = "psql-${local.prefix}-${random_string.suffix.result}"
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  version                       = "17"
  sku_name                      = var.db_sku_name
  storage_mb                    = var.db_storage_mb
  auto_grow_enabled             = true
  administrator_login           = "mlops"
  administrator_password        = random_password.db.result
  public_network_access_enabled = false
  backup_retention_days         = var.db_backup_retention_days
  geo_redundant_backup_enabled  = var.db_geo_redundant_backup
  zone                          = length(var.availability_zones) > 0 ? var.availability_zones[0] : null

  dynamic "high_availability" {
    for_each = var.db_high_availability ? [1] : []
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = length(var.availability_zones) > 1 ? var.availability_zones[1] : null
    }
  }

  authentication {
    password_auth_enabled         = true
    active_directory_auth_enabled = false
  }

  maintenance_window {
    day_of_week  = 0
    start_hour   = 3
    start_minute = 0
  }

  tags = local.tags

  lifecycle {
    # Azure may swap primary and standby zones on failover.
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }
}

resource "azurerm_postgresql_flexible_server_database" "this" {
  for_each = toset(["dagster", "mlflow"])

  name      = each.value
  server_id = azurerm_postgresql_flexible_server.this.id
  charset   = "UTF8"
  collation = "en_US.utf8"
}

resource "azurerm_private_endpoint" "postgres" {
  name                = "pe-${local.prefix}-psql"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "postgres"
    private_connection_resource_id = azurerm_postgresql_flexible_server.this.id
    subresource_names              = ["postgresqlServer"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "postgres"
    private_dns_zone_ids = [azurerm_private_dns_zone.this["postgres"].id]
  }
}

resource "azurerm_management_lock" "postgres" {
  count = var.db_deletion_protection ? 1 : 0

  name       = "do-not-delete"
  scope      = azurerm_postgresql_flexible_server.this.id
  lock_level = "CanNotDelete"
  notes      = "Dagster instance and MLflow backend store of ${local.prefix}"
}

resource "azurerm_monitor_diagnostic_setting" "postgres" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_postgresql_flexible_server.this.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "PostgreSQLLogs"
  }
}
