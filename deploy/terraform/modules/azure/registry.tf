# Premium container registry (private-endpoint-capable, zone redundant: needs a region with
# availability zones, CMK): the user-code image
# and the serving image that Azure ML endpoints pull. Firewall default-denies; CI pushes from
# admin_ip_ranges.

resource "azurerm_container_registry" "this" {
  #checkov:skip=CKV_AZURE_139:CI pushes images from outside the VNet; the registry firewall default-denies and admits only admin_ip_ranges plus trusted Azure services.
  #checkov:skip=CKV_AZURE_164:Docker Content Trust is deprecated in ACR (removed in azurerm 5); sign images with Notation instead.
  #checkov:skip=CKV_AZURE_166:Quarantine blocks every pull until an external scanner releases the image; there is no such scanner in this design.
  #checkov:skip=CKV_AZURE_165:Geo-replication is the registry_geo_replica_location variable: set in prod tfvars, off in dev (a replica costs as much as the registry).
  name                          = local.registry_name
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  sku                           = "Premium"
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  public_network_access_enabled = true
  network_rule_bypass_option    = "AzureServices"
  zone_redundancy_enabled       = true
  data_endpoint_enabled         = true
  retention_policy_in_days      = 7
  quarantine_policy_enabled     = false
  trust_policy_enabled          = false

  # network_rule_set and ip_rule are attribute-mode blocks in azurerm (Terraform cannot expand
  # them with `dynamic`): the attribute syntax the provider documents, with every field set.
  network_rule_set = [{
    default_action = "Deny"
    ip_rule        = [for cidr in var.admin_ip_ranges : { action = "Allow", ip_range = cidr }]
  }]

  dynamic "georeplications" {
    for_each = var.registry_geo_replica_location == null ? [] : [var.registry_geo_replica_location]
    content {
      location                = georeplications.value
      zone_redundancy_enabled = true
      tags                    = local.tags
    }
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cmk["registry"].id]
  }

  encryption {
    key_vault_key_id   = azurerm_key_vault_key.platform.versionless_id
    identity_client_id = azurerm_user_assigned_identity.cmk["registry"].client_id
  }

  tags = local.tags

  depends_on = [azurerm_role_assignment.cmk]
}

# Nodes pull images with the kubelet identity.
resource "azurerm_role_assignment" "kubelet_acr_pull" {
  scope                = azurerm_container_registry.this.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
}
