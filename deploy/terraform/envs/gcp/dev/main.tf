module "platform" {
  source = "../../../modules/gcp"

  providers = {
    google      = google
    google-beta = google-beta
  }

  project_id  = var.project_id
  region      = var.region
  zones       = var.zones
  environment = "dev"
  cost_center = var.cost_center
  owner       = var.owner

  regional_cluster            = var.regional_cluster
  master_authorized_networks  = var.master_authorized_networks
  system_node_machine_type    = var.system_node_machine_type
  system_node_count           = var.system_node_count
  spot_node_machine_type      = var.spot_node_machine_type
  spot_node_max_count         = var.spot_node_max_count
  node_disk_size_gb           = var.node_disk_size_gb
  cluster_deletion_protection = var.cluster_deletion_protection

  db_tier                   = var.db_tier
  db_disk_size_gb           = var.db_disk_size_gb
  db_high_availability      = var.db_high_availability
  db_backup_retention_count = var.db_backup_retention_count
  db_deletion_protection    = var.db_deletion_protection

  bucket_location                    = var.bucket_location
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  billing_account_id  = var.billing_account_id
  monthly_budget_usd  = var.monthly_budget_usd
  budget_alert_emails = var.budget_alert_emails
}
