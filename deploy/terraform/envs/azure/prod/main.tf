module "platform" {
  source = "../../../modules/azure"

  environment = "prod"
  location    = var.location
  cost_center = var.cost_center
  owner       = var.owner

  admin_ip_ranges    = var.admin_ip_ranges
  availability_zones = var.availability_zones

  aks_sku_tier                   = var.aks_sku_tier
  cluster_admin_group_object_ids = var.cluster_admin_group_object_ids
  system_node_vm_size            = var.system_node_vm_size
  system_node_count              = var.system_node_count
  spot_node_vm_size              = var.spot_node_vm_size
  spot_node_max_count            = var.spot_node_max_count
  os_disk_size_gb                = var.os_disk_size_gb
  log_retention_days             = var.log_retention_days

  storage_replication_type           = var.storage_replication_type
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  azureml_workspace_id               = var.azureml_workspace_id

  db_sku_name              = var.db_sku_name
  db_storage_mb            = var.db_storage_mb
  db_high_availability     = var.db_high_availability
  db_geo_redundant_backup  = var.db_geo_redundant_backup
  db_backup_retention_days = var.db_backup_retention_days
  db_deletion_protection   = var.db_deletion_protection

  registry_geo_replica_location = var.registry_geo_replica_location

  monthly_budget_usd  = var.monthly_budget_usd
  budget_alert_emails = var.budget_alert_emails
}
