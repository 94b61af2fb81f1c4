variable "subscription_id" {
  description = "Azure subscription of the stack."
  type        = string
}

variable "location" {
  description = "Azure region of the stack."
  type        = string
}

variable "cost_center" {
  description = "CostCenter tag."
  type        = string
}

variable "owner" {
  description = "Owner tag: the accountable team."
  type        = string
}

variable "admin_ip_ranges" {
  description = "Admin/CI CIDRs admitted by the Key Vault and registry firewalls."
  type        = list(string)
  default     = []
}

variable "availability_zones" {
  description = "Zones of node pools and Postgres HA."
  type        = list(string)
}

variable "aks_sku_tier" {
  description = "AKS tier: Free (dev) or Standard (prod, SLA)."
  type        = string
}

variable "cluster_admin_group_object_ids" {
  description = "Entra ID groups with cluster-admin."
  type        = list(string)
  default     = []
}

variable "system_node_vm_size" {
  description = "VM size of the on-demand system pool."
  type        = string
}

variable "system_node_count" {
  description = "Nodes in the system pool."
  type        = number
}

variable "spot_node_vm_size" {
  description = "VM size of the Spot pool (runs, steps, training)."
  type        = string
}

variable "spot_node_max_count" {
  description = "Maximum Spot nodes (the pool scales from zero)."
  type        = number
}

variable "os_disk_size_gb" {
  description = "Ephemeral OS disk size in GB."
  type        = number
}

variable "log_retention_days" {
  description = "Log Analytics retention in days."
  type        = number
}

variable "storage_replication_type" {
  description = "Replication of the data storage account."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days before previous blob versions are deleted."
  type        = number
}

variable "db_sku_name" {
  description = "Postgres flexible server SKU."
  type        = string
}

variable "db_storage_mb" {
  description = "Postgres storage in MB."
  type        = number
}

variable "db_high_availability" {
  description = "Zone-redundant HA for Postgres."
  type        = bool
}

variable "db_geo_redundant_backup" {
  description = "Geo-redundant Postgres backups."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Backup retention / PITR window in days."
  type        = number
}

variable "db_deletion_protection" {
  description = "Delete lock on Postgres."
  type        = bool
}

variable "registry_geo_replica_location" {
  description = "Second region of the container registry, or null."
  type        = string
  default     = null
}

variable "azureml_workspace_id" {
  description = "Azure ML workspace id serving the models, or null."
  type        = string
  default     = null
}

variable "monthly_budget_usd" {
  description = "Monthly budget in USD."
  type        = number
}

variable "budget_alert_emails" {
  description = "Budget alert recipients."
  type        = list(string)
}
