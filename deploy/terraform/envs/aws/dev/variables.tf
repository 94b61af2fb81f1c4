variable "region" {
  description = "AWS region of the stack."
  type        = string
}

variable "replica_region" {
  description = "AWS region of the disaster-recovery bucket replica (used when replication_enabled)."
  type        = string
}

variable "cost_center" {
  description = "CostCenter cost-allocation tag."
  type        = string
}

variable "owner" {
  description = "Owner tag: the accountable team."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones (2 or 3 names in region)."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (dev) instead of one per zone (prod)."
  type        = bool
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version."
  type        = string
}

variable "cluster_endpoint_public_access" {
  description = "Expose the EKS API publicly, restricted to cluster_endpoint_public_access_cidrs."
  type        = bool
  default     = false
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach a public EKS API endpoint."
  type        = list(string)
  default     = []
}

variable "cluster_admin_principal_arns" {
  description = "IAM principals granted cluster-admin."
  type        = list(string)
  default     = []
}

variable "system_node_instance_types" {
  description = "Instance types of the on-demand system pool."
  type        = list(string)
}

variable "system_node_count" {
  description = "Nodes in the on-demand system pool."
  type        = number
}

variable "spot_node_instance_types" {
  description = "Instance types of the spot pool (runs, steps, training)."
  type        = list(string)
}

variable "spot_node_max_count" {
  description = "Maximum nodes of the spot pool (it scales from zero)."
  type        = number
}

variable "node_disk_size_gb" {
  description = "Root volume size of each node in GB."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_allocated_storage_gb" {
  description = "RDS storage in GB."
  type        = number
}

variable "db_multi_az" {
  description = "Multi-AZ standby for Postgres."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Backup retention and point-in-time-recovery window in days."
  type        = number
}

variable "db_deletion_protection" {
  description = "Deletion protection (and final snapshot) for Postgres."
  type        = bool
}

variable "replication_enabled" {
  description = "Replicate the data bucket to replica_region."
  type        = bool
}

variable "noncurrent_version_expiration_days" {
  description = "Days before non-current object versions are deleted."
  type        = number
}

variable "cluster_log_retention_days" {
  description = "Retention of EKS control-plane logs."
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
