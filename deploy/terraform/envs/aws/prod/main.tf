module "platform" {
  source = "../../../modules/aws"

  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  environment = "prod"
  cost_center = var.cost_center
  owner       = var.owner

  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway

  kubernetes_version                   = var.kubernetes_version
  cluster_endpoint_public_access       = var.cluster_endpoint_public_access
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  cluster_admin_principal_arns         = var.cluster_admin_principal_arns
  cluster_log_retention_days           = var.cluster_log_retention_days
  system_node_instance_types           = var.system_node_instance_types
  system_node_count                    = var.system_node_count
  spot_node_instance_types             = var.spot_node_instance_types
  spot_node_max_count                  = var.spot_node_max_count
  node_disk_size_gb                    = var.node_disk_size_gb

  db_instance_class        = var.db_instance_class
  db_allocated_storage_gb  = var.db_allocated_storage_gb
  db_multi_az              = var.db_multi_az
  db_backup_retention_days = var.db_backup_retention_days
  db_deletion_protection   = var.db_deletion_protection

  replication_enabled                = var.replication_enabled
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  monthly_budget_usd  = var.monthly_budget_usd
  budget_alert_emails = var.budget_alert_emails
}
