variable "project_id" {
  description = "GCP project of the stack."
  type        = string
}

variable "region" {
  description = "GCP region of the stack."
  type        = string
}

variable "zones" {
  description = "Zones of the node pools (a zonal cluster uses the first)."
  type        = list(string)
}

variable "regional_cluster" {
  description = "Regional (HA) cluster instead of a zonal one."
  type        = bool
}

variable "billing_account_id" {
  description = "Billing account that owns the budget."
  type        = string
}

variable "cost_center" {
  description = "cost-center label."
  type        = string
}

variable "owner" {
  description = "owner label: the accountable team."
  type        = string
}

variable "master_authorized_networks" {
  description = "CIDRs allowed to reach the GKE API endpoint."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []
}

variable "system_node_machine_type" {
  description = "Machine type of the on-demand system pool."
  type        = string
}

variable "system_node_count" {
  description = "System pool nodes per zone in use."
  type        = number
}

variable "spot_node_machine_type" {
  description = "Machine type of the Spot pool (runs, steps, training)."
  type        = string
}

variable "spot_node_max_count" {
  description = "Maximum Spot nodes (the pool scales from zero)."
  type        = number
}

variable "node_disk_size_gb" {
  description = "Boot disk size of each node in GB."
  type        = number
}

variable "cluster_deletion_protection" {
  description = "Terraform-level deletion protection of the cluster."
  type        = bool
}

variable "db_tier" {
  description = "Cloud SQL tier."
  type        = string
}

variable "db_disk_size_gb" {
  description = "Cloud SQL SSD size in GB."
  type        = number
}

variable "db_high_availability" {
  description = "Regional (HA) Cloud SQL instance."
  type        = bool
}

variable "db_backup_retention_count" {
  description = "Daily backups kept."
  type        = number
}

variable "db_deletion_protection" {
  description = "Deletion protection of Cloud SQL."
  type        = bool
}

variable "bucket_location" {
  description = "Data bucket location: the region or a dual-region (NAM4, EUR4)."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days before non-current object versions are deleted."
  type        = number
}

variable "monthly_budget_usd" {
  description = "Monthly budget in USD."
  type        = number
}

variable "budget_alert_emails" {
  description = "Budget alert recipients."
  type        = list(string)
}
