# AKS with two node pools:
#   system (default pool): small on-demand pool for AKS system pods, the Dagster services and MLflow.
#   spot:   Spot VMs, autoscaling from zero, tainted; runs and step pods tolerate the taint.
# AKS adds kubernetes.azure.com/scalesetpriority=spot:NoSchedule to Spot pools by itself (and the
# label of the same name); the taint is listed below so Terraform shows no drift, and the Helm
# values tolerate it too. The pool is selected by our own label, never by AKS's reserved one.
# tests/deploy compares the label/taint below with the Helm values.

resource "azurerm_kubernetes_cluster" "this" {
  #checkov:skip=CKV_AZURE_170:The control-plane tier is the aks_sku_tier variable: Standard (SLA) in prod tfvars (asserted by tests/deploy), Free in dev.
  #checkov:skip=CKV_AZURE_232:The small on-demand pool deliberately hosts the Dagster services and MLflow next to the AKS system pods to keep the always-on node count low.
  #checkov:skip=CKV_AZURE_117:Nodes use ephemeral OS disks (no managed OS disk) with encryption at host, and the platform creates no persistent volumes.
  name                = "aks-${local.prefix}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  node_resource_group = "rg-${local.prefix}-aks-nodes"
  dns_prefix          = local.prefix
  kubernetes_version  = var.kubernetes_version
  sku_tier            = var.aks_sku_tier

  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"

  private_cluster_enabled           = true
  private_dns_zone_id               = "System"
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_policy_enabled              = true
  http_application_routing_enabled  = false
  oidc_issuer_enabled               = true
  workload_identity_enabled         = true
  image_cleaner_enabled             = true
  image_cleaner_interval_hours      = 48
  cost_analysis_enabled             = var.aks_sku_tier != "Free"

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled     = true
    tenant_id              = data.azurerm_client_config.current.tenant_id
    admin_group_object_ids = var.cluster_admin_group_object_ids
  }

  identity {
    type = "SystemAssigned"
  }

  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_vm_size
    node_count                   = var.system_node_count
    auto_scaling_enabled         = false
    zones                        = var.availability_zones
    vnet_subnet_id               = azurerm_subnet.aks.id
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = var.os_disk_size_gb
    host_encryption_enabled      = true
    node_public_ip_enabled       = false
    only_critical_addons_enabled = false
    max_pods                     = 110
    temporary_name_for_rotation  = "systemtmp"

    node_labels = {
      "mlops-platform/pool" = "system"
    }

    upgrade_settings {
      max_surge = "1"
    }

    tags = local.tags
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    # Cilium enforces NetworkPolicy (the MLflow server is reachable only from its namespace).
    network_policy    = "cilium"
    pod_cidr          = "192.168.0.0/16"
    service_cidr      = "172.20.0.0/16"
    dns_service_ip    = "172.20.0.10"
    load_balancer_sku = "standard"
    outbound_type     = "loadBalancer"
  }

  # Scale the Spot pool back to zero soon after runs finish.
  auto_scaler_profile {
    scale_down_unneeded        = "5m"
    scale_down_delay_after_add = "5m"
    expander                   = "least-waste"
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.this.id
    msi_auth_for_monitoring_enabled = true
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  maintenance_window_auto_upgrade {
    frequency   = "Weekly"
    interval    = 1
    day_of_week = "Sunday"
    start_time  = "03:00"
    duration    = 4
    utc_offset  = "+00:00"
  }

  tags = local.tags

  lifecycle {
    ignore_changes = [default_node_pool[0].upgrade_settings]
  }
}

resource "azurerm_kubernetes_cluster_node_pool" "spot" {
  name                    = "spot"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.this.id
  mode                    = "User"
  vm_size                 = var.spot_node_vm_size
  priority                = "Spot"
  eviction_policy         = "Delete"
  spot_max_price          = -1
  auto_scaling_enabled    = true
  min_count               = 0
  max_count               = var.spot_node_max_count
  node_count              = 0
  zones                   = var.availability_zones
  vnet_subnet_id          = azurerm_subnet.aks.id
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = var.os_disk_size_gb
  host_encryption_enabled = true
  node_public_ip_enabled  = false
  max_pods                = 110

  # Our own label only: kubernetes.azure.com/ is reserved for AKS, which sets
  # kubernetes.azure.com/scalesetpriority=spot on Spot nodes itself and may reject it as a user
  # label. Runs select mlops-platform/pool=spot and tolerate both taints below.
  node_labels = {
    "mlops-platform/pool" = "spot"
  }

  node_taints = [
    "mlops-platform/pool=spot:NoSchedule",
    "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
  ]

  tags = local.tags

  lifecycle {
    ignore_changes = [node_count]
  }
}
