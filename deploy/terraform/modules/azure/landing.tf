# Landing zone events: the storage account's Event Grid system topic delivers BlobCreated events of
# blobs under <container>/landing/ to a Storage Queue in the same account; the landing sensor
# (Dagster code server, workload identity dagster) drains it instead of listing the container
# (MLOPS_LANDING_QUEUE = the queue URL). Pods reach the queue through its private endpoint.
#
# The account has no public network access: Event Grid delivers as the system topic's
# system-assigned identity through the trusted-services exception (network_rules bypass
# "AzureServices" in storage.tf); a user-assigned identity is not admitted by the firewall.

locals {
  landing_queue_name = "landing-events"
  # Same retention as the AWS queue: a sensor stopped over a long weekend still finds its events.
  landing_queue_message_ttl_seconds = 7 * 24 * 3600
  # Subjects of BlobCreated events are /blobServices/default/containers/<container>/blobs/<name>.
  landing_subject_prefix = "/blobServices/default/containers/${local.container_name}/blobs/${local.landing_prefix}/"
}

# Created through Resource Manager (storage_account_id, azurerm >= 4.46), so Terraform needs no
# data-plane access to the account.
resource "azurerm_storage_queue" "landing_events" {
  name               = local.landing_queue_name
  storage_account_id = azurerm_storage_account.data.id
}

resource "azurerm_eventgrid_system_topic" "data" {
  name                = "evgt-${local.prefix}-data"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  source_resource_id  = azurerm_storage_account.data.id
  topic_type          = "Microsoft.Storage.StorageAccounts"

  identity {
    type = "SystemAssigned"
  }

  tags = local.tags
}

# Event Grid may add messages to the landing queue only (not read, not delete, no other queue).
resource "azurerm_role_assignment" "landing_events_sender" {
  scope                = azurerm_storage_queue.landing_events.id
  role_definition_name = "Storage Queue Data Message Sender"
  principal_id         = azurerm_eventgrid_system_topic.data.identity[0].principal_id
}

resource "azurerm_eventgrid_system_topic_event_subscription" "landing" {
  name                  = "landing-blob-created"
  system_topic          = azurerm_eventgrid_system_topic.data.name
  resource_group_name   = azurerm_resource_group.this.name
  event_delivery_schema = "EventGridSchema"
  included_event_types  = ["Microsoft.Storage.BlobCreated"]

  subject_filter {
    subject_begins_with = local.landing_subject_prefix
    case_sensitive      = true
  }

  storage_queue_endpoint {
    storage_account_id                    = azurerm_storage_account.data.id
    queue_name                            = azurerm_storage_queue.landing_events.name
    queue_message_time_to_live_in_seconds = local.landing_queue_message_ttl_seconds
  }

  delivery_identity {
    type = "SystemAssigned"
  }

  # Event Grid's maximum: retried for 24 h; the files stay in the container meanwhile.
  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }

  depends_on = [azurerm_role_assignment.landing_events_sender]
}

resource "azurerm_private_endpoint" "queue" {
  name                = "pe-${local.prefix}-queue"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "queue"
    private_connection_resource_id = azurerm_storage_account.data.id
    subresource_names              = ["queue"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "queue"
    private_dns_zone_ids = [azurerm_private_dns_zone.this["queue"].id]
  }
}

# Queue reads, writes and deletes to Log Analytics (as the blob logs in storage.tf).
resource "azurerm_monitor_diagnostic_setting" "queue" {
  name                       = "to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.data.id}/queueServices/default"
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
