# Key Vault (Premium: HSM-backed keys) for the customer-managed key of the storage account and the
# registry, and for the Postgres password. RBAC authorization; the firewall denies by default and
# admits the admin/CI ranges (Terraform writes keys and secrets from there); pods reach it
# through the private endpoint.

resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_189:Terraform and CI run outside the VNet and must write keys and secrets; the firewall default-denies and admits only admin_ip_ranges, pods use the private endpoint.
  name                          = local.key_vault_name
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "premium"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.admin_ip_ranges
  }

  tags = local.tags
}

resource "azurerm_role_assignment" "deployer_key_vault_admin" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Administrator"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_private_endpoint" "key_vault" {
  name                = "pe-${local.prefix}-kv"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "kv"
    private_connection_resource_id = azurerm_key_vault.this.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [azurerm_private_dns_zone.this["vault"].id]
  }
}

resource "azurerm_key_vault_key" "platform" {
  name         = "platform"
  key_vault_id = azurerm_key_vault.this.id
  key_type     = "RSA-HSM"
  key_size     = 3072
  key_opts     = ["wrapKey", "unwrapKey"]

  # Expiry is set once at creation; the rotation policy creates a new version 60 days before it
  # expires and the storage account/registry follow the versionless key id.
  expiration_date = timeadd(timestamp(), "17520h")

  rotation_policy {
    expire_after         = "P2Y"
    notify_before_expiry = "P30D"

    automatic {
      time_before_expiry = "P60D"
    }
  }

  tags = local.tags

  lifecycle {
    ignore_changes = [expiration_date]
  }

  depends_on = [azurerm_role_assignment.deployer_key_vault_admin]
}

# Identities that the storage account and the registry use to unwrap their data keys.
resource "azurerm_user_assigned_identity" "cmk" {
  for_each = toset(["storage", "registry"])

  name                = "id-${local.prefix}-${each.key}-cmk"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "cmk" {
  for_each = azurerm_user_assigned_identity.cmk

  scope                = azurerm_key_vault_key.platform.resource_versionless_id
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = each.value.principal_id
}

resource "azurerm_key_vault_secret" "db_password" {
  name            = "postgres-password"
  value           = random_password.db.result
  key_vault_id    = azurerm_key_vault.this.id
  content_type    = "text/plain; postgres password of ${local.prefix}"
  expiration_date = timeadd(timestamp(), "8760h")
  tags            = local.tags

  # A yearly expiry is a rotation reminder; see the rotation runbook in deploy/README.md.
  lifecycle {
    ignore_changes = [expiration_date]
  }

  depends_on = [azurerm_role_assignment.deployer_key_vault_admin]
}

# MLflow's own Postgres user (the flexible server has no API for non-admin roles: the Job
# deploy/helm/mlflow/mlflow-database.yaml creates it with this password). The MLflow pods read it
# from their own Kubernetes secret (mlflow-postgresql-secret), never the admin password.
resource "random_password" "mlflow_db" {
  length           = 32
  special          = true
  override_special = "-_" # URL-safe: the password is embedded in the MLflow backend-store URI
}

resource "azurerm_key_vault_secret" "mlflow_db_password" {
  name            = "postgres-mlflow-password"
  value           = random_password.mlflow_db.result
  key_vault_id    = azurerm_key_vault.this.id
  content_type    = "text/plain; postgres password of the MLflow role of ${local.prefix}"
  expiration_date = timeadd(timestamp(), "8760h")
  tags            = local.tags

  lifecycle {
    ignore_changes = [expiration_date]
  }

  depends_on = [azurerm_role_assignment.deployer_key_vault_admin]
}

resource "azurerm_monitor_diagnostic_setting" "key_vault" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_key_vault.this.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "AuditEvent"
  }
}
