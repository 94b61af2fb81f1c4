# ---------------------------------------------------------------------------------------------
# Project, identity and labels
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "GCP project that holds the stack."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id."
  }
}

variable "region" {
  description = "Region of the cluster, Cloud SQL, the registry and the KMS key."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "zones" {
  description = "Zones of the node pools. A zonal cluster (regional_cluster = false) uses the first one only."
  type        = list(string)

  validation {
    condition     = length(var.zones) >= 1 && length(var.zones) <= 3
    error_message = "Give 1 to 3 zones."
  }

  validation {
    condition     = alltrue([for z in var.zones : startswith(z, "${var.region}-")])
    error_message = "Every zone must be in region."
  }
}

variable "regional_cluster" {
  description = "Regional control plane and nodes in every zone (HA, prod). Off: zonal cluster, covered by the GKE free tier (dev)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Short platform name; prefixes every resource name (together with the environment)."
  type        = string
  default     = "mlops-platform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,16}[a-z0-9]$", var.name))
    error_message = "name must be 4-18 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment. Drives names and the environment cost label."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "cost_center" {
  description = "Value of the cost-center label (billing export and budget reports group by it)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_-]{1,63}$", var.cost_center))
    error_message = "cost_center must be a valid label value: lowercase letters, digits, _ and -."
  }
}

variable "owner" {
  description = "Owner label: the accountable team."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_-]{1,63}$", var.owner))
    error_message = "owner must be a valid label value: lowercase letters, digits, _ and -."
  }
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

variable "subnet_cidr" {
  description = "Primary range of the node subnet."
  type        = string
  default     = "10.50.0.0/20"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be a valid CIDR."
  }
}

variable "pods_cidr" {
  description = "Secondary range for pod IPs (VPC-native cluster)."
  type        = string
  default     = "10.52.0.0/16"

  validation {
    condition     = can(cidrhost(var.pods_cidr, 0))
    error_message = "pods_cidr must be a valid CIDR."
  }
}

variable "services_cidr" {
  description = "Secondary range for Service IPs."
  type        = string
  default     = "10.53.0.0/20"

  validation {
    condition     = can(cidrhost(var.services_cidr, 0))
    error_message = "services_cidr must be a valid CIDR."
  }
}

variable "master_cidr" {
  description = "/28 range of the private GKE control plane."
  type        = string
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrhost(var.master_cidr, 0)) && endswith(var.master_cidr, "/28")
    error_message = "master_cidr must be a /28."
  }
}

variable "master_authorized_networks" {
  description = "CIDRs allowed to reach the GKE API endpoint (admins, CI runners). Never 0.0.0.0/0."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []

  validation {
    condition     = alltrue([for n in var.master_authorized_networks : can(cidrhost(n.cidr_block, 0)) && n.cidr_block != "0.0.0.0/0"])
    error_message = "master_authorized_networks must be valid CIDRs and must not contain 0.0.0.0/0."
  }
}

variable "private_endpoint_only" {
  description = "Give the control plane no public endpoint at all (reach it from the VPC, e.g. IAP bastion)."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Kubernetes (GKE)
# ---------------------------------------------------------------------------------------------

variable "release_channel" {
  description = "GKE release channel; GKE upgrades control plane and nodes within it."
  type        = string
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "rbac_security_group" {
  description = "Google Group (gke-security-groups@YOUR-DOMAIN) whose nested groups are usable in Kubernetes RBAC; null when the organisation has none."
  type        = string
  default     = null
}

variable "system_node_machine_type" {
  description = "Machine type of the on-demand pool for the Dagster services and MLflow."
  type        = string
  default     = "e2-standard-2"
}

variable "system_node_count" {
  description = "Nodes of the system pool per zone in use (a regional cluster multiplies it by the zone count)."
  type        = number
  default     = 1

  validation {
    condition     = var.system_node_count >= 1 && var.system_node_count <= 10
    error_message = "system_node_count must be between 1 and 10."
  }
}

variable "spot_node_machine_type" {
  description = "Machine type of the Spot pool for runs, step pods and training."
  type        = string
  default     = "e2-standard-4"
}

variable "spot_node_max_count" {
  description = "Maximum Spot nodes in total; the pool scales from zero."
  type        = number
  default     = 5

  validation {
    condition     = var.spot_node_max_count >= 1 && var.spot_node_max_count <= 100
    error_message = "spot_node_max_count must be between 1 and 100."
  }
}

variable "node_disk_size_gb" {
  description = "Boot disk size of every node (pd-balanced)."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size_gb >= 20 && var.node_disk_size_gb <= 1000
    error_message = "node_disk_size_gb must be between 20 and 1000."
  }
}

variable "cluster_deletion_protection" {
  description = "Terraform-level deletion protection of the GKE cluster."
  type        = bool
  default     = true
}

variable "k8s_namespace" {
  description = "Namespace of Dagster and MLflow; Workload Identity binds service accounts in it."
  type        = string
  default     = "mlops"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.k8s_namespace))
    error_message = "k8s_namespace must be a valid Kubernetes namespace name."
  }
}

variable "dagster_service_account" {
  description = "Kubernetes service account of all Dagster pods (Helm global.serviceAccountName)."
  type        = string
  default     = "dagster"
}

variable "mlflow_service_account" {
  description = "Kubernetes service account of the MLflow tracking server."
  type        = string
  default     = "mlflow"
}

# ---------------------------------------------------------------------------------------------
# Object storage
# ---------------------------------------------------------------------------------------------

variable "bucket_location" {
  description = "Location of the data bucket: the region (cheapest) or a dual-region such as NAM4 / EUR4 (geo-redundant, prod)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+$", var.bucket_location))
    error_message = "bucket_location must be a GCS location name."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current object versions are deleted."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 7
    error_message = "Keep non-current versions for at least 7 days."
  }
}

variable "compute_log_retention_days" {
  description = "Days Dagster compute logs are kept."
  type        = number
  default     = 30

  validation {
    condition     = var.compute_log_retention_days >= 1
    error_message = "compute_log_retention_days must be >= 1."
  }
}

variable "backup_retention_days" {
  description = "Days the registry exports under backups/ (mlops-platform registry export) are kept."
  type        = number
  default     = 35

  validation {
    condition     = var.backup_retention_days >= 7
    error_message = "Keep registry exports for at least 7 days."
  }
}

variable "access_log_retention_days" {
  description = "Days GCS usage logs of the data bucket are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 30
    error_message = "Keep access logs for at least 30 days."
  }
}

# ---------------------------------------------------------------------------------------------
# Cloud SQL for PostgreSQL
# ---------------------------------------------------------------------------------------------

variable "db_tier" {
  description = "Cloud SQL machine tier (Enterprise edition), e.g. db-g1-small or db-custom-2-7680."
  type        = string
  default     = "db-custom-2-7680"

  validation {
    condition     = can(regex("^db-(f1-micro|g1-small|custom-[0-9]+-[0-9]+)$", var.db_tier))
    error_message = "db_tier must be db-f1-micro, db-g1-small or db-custom-CPUS-MEMORY_MB."
  }
}

variable "db_disk_size_gb" {
  description = "Initial SSD size of the instance (auto-grows)."
  type        = number
  default     = 20

  validation {
    condition     = var.db_disk_size_gb >= 10
    error_message = "db_disk_size_gb must be >= 10."
  }
}

variable "db_high_availability" {
  description = "REGIONAL availability: a standby in a second zone with automatic failover. On in prod."
  type        = bool
  default     = true
}

variable "db_backup_retention_count" {
  description = "Daily automated backups kept."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_count >= 1 && var.db_backup_retention_count <= 365
    error_message = "db_backup_retention_count must be between 1 and 365."
  }
}

variable "db_pitr_days" {
  description = "Days of transaction logs kept for point-in-time recovery (Enterprise edition: 1-7)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_pitr_days >= 1 && var.db_pitr_days <= 7
    error_message = "db_pitr_days must be between 1 and 7."
  }
}

variable "db_deletion_protection" {
  description = "Deletion protection of the Cloud SQL instance (API-level and Terraform-level). On in prod."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Registry, budget
# ---------------------------------------------------------------------------------------------

variable "image_retention_count" {
  description = "Most recent versions kept per image in Artifact Registry."
  type        = number
  default     = 50

  validation {
    condition     = var.image_retention_count >= 5
    error_message = "Keep at least 5 versions so rollbacks stay possible."
  }
}

variable "billing_account_id" {
  description = "Billing account (XXXXXX-XXXXXX-XXXXXX) that owns the budget."
  type        = string

  validation {
    condition     = can(regex("^[A-Z0-9]{6}-[A-Z0-9]{6}-[A-Z0-9]{6}$", var.billing_account_id))
    error_message = "billing_account_id must look like 012345-6789AB-CDEF01."
  }
}

variable "monthly_budget_usd" {
  description = "Monthly budget (USD) for the project's resources labelled with this stack."
  type        = number

  validation {
    condition     = var.monthly_budget_usd > 0
    error_message = "monthly_budget_usd must be positive."
  }
}

variable "budget_alert_emails" {
  description = "Addresses notified at 50%, 80% and 100% actual and 100% forecast spend."
  type        = list(string)

  validation {
    condition     = length(var.budget_alert_emails) > 0 && alltrue([for e in var.budget_alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "budget_alert_emails must hold at least one valid e-mail address."
  }
}
