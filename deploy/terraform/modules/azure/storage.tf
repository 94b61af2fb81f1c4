# One StorageV2 account with one private container "mlops" holding lake/, mlflow/,
# dagster/compute-logs/, landing/ and quarantine/, and the landing-event queue (landing.tf). Entra ID auth only (no shared keys), no public network
# access (pods use the private endpoint), CMK encryption, blob versioning, soft delete and
# point-in-time restore, lifecycle tiering to Cool/Cold by last access.

resource "azurerm_storage_account" "data" {
  #checkov:skip=CKV_AZURE_206:Replication is the storage_replication_type variable: RAGZRS in prod tfvars (asserted by tests/deploy), LRS in dev.
  #checkov:skip=CKV_AZURE_33:Queue read/write/delete logs go to Log Analytics through azurerm_monitor_diagnostic_setting.queue (landing.tf); queue_properties logging needs the disabled data-plane keys.
  name                              = local.storage_account_name
  location                          = azurerm_resource_group.this.location
  resource_group_name               = azurerm_resource_group.this.name
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication_type
  access_tier                       = "Hot"
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  public_network_access_enabled     = false
  local_user_enabled                = false
  infrastructure_encryption_enabled = true

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cmk["storage"].id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.platform.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.cmk["storage"].id
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled       = true
    change_feed_enabled      = true
    last_access_time_enabled = true

    delete_retention_policy {
      days = var.blob_soft_delete_days
    }

    container_delete_retention_policy {
      days = var.blob_soft_delete_days
    }

    # Point-in-time restore of block blobs (a whole prefix back to a timestamp).
    restore_policy {
      days = var.blob_soft_delete_days - 1
    }
  }

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices", "Logging", "Metrics"]

    dynamic "private_link_access" {
      for_each = var.azureml_workspace_id == null ? [] : [var.azureml_workspace_id]
      content {
        endpoint_resource_id = private_link_access.value
      }
    }
  }

  tags = merge(local.tags, { DataClass = "platform-data" })

  depends_on = [azurerm_role_assignment.cmk]
}

# Created through Resource Manager (storage_account_id), so Terraform needs no data-plane access.
resource "azurerm_storage_container" "data" {
  #checkov:skip=CKV2_AZURE_21:Blob read/write/delete logs go to Log Analytics through azurerm_monitor_diagnostic_setting.blob; Storage Insights would need the disabled account keys.
  name                  = local.container_name
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_storage_management_policy" "data" {
  storage_account_id = azurerm_storage_account.data.id

  rule {
    name    = "tier-by-last-access-and-expire-versions"
    enabled = true

    filters {
      blob_types = ["blockBlob"]
    }

    actions {
      base_blob {
        tier_to_cool_after_days_since_last_access_time_greater_than = var.cool_after_days
        auto_tier_to_hot_from_cool_enabled                          = true
        tier_to_cold_after_days_since_last_access_time_greater_than = var.cold_after_days
      }

      version {
        change_tier_to_cool_after_days_since_creation = var.cool_after_days
        delete_after_days_since_creation              = var.noncurrent_version_expiration_days
      }
    }
  }

  rule {
    name    = "expire-registry-exports"
    enabled = true

    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${local.container_name}/${local.backups_prefix}/"]
    }

    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = var.backup_retention_days
      }
    }
  }

  rule {
    name    = "expire-compute-logs"
    enabled = true

    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${local.container_name}/${local.compute_logs_prefix}/"]
    }

    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = var.compute_log_retention_days
      }
    }
  }
}

resource "azurerm_private_endpoint" "blob" {
  name                = "pe-${local.prefix}-blob"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "blob"
    private_connection_resource_id = azurerm_storage_account.data.id
    subresource_names              = ["blob"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "blob"
    private_dns_zone_ids = [azurerm_private_dns_zone.this["blob"].id]
  }
}

resource "azurerm_monitor_diagnostic_setting" "blob" {
  name                       = "to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.data.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "StorageRead"
  }

  enabled_log {
    category = "StorageWrite"
  }

  enabled_log {
    category = "StorageDelete"
  }
}
