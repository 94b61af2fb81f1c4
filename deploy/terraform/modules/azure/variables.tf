# ---------------------------------------------------------------------------------------------
# Identity and tags
# ---------------------------------------------------------------------------------------------

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
  description = "Deployment environment. Drives names and the Environment cost-allocation tag."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "location" {
  description = "Azure region of the stack (e.g. eastus)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location must be a region name such as eastus."
  }
}

variable "cost_center" {
  description = "CostCenter tag (Cost Management groups and filters by tags)."
  type        = string

  validation {
    condition     = length(var.cost_center) > 0 && length(var.cost_center) <= 64
    error_message = "cost_center must be 1-64 characters."
  }
}

variable "owner" {
  description = "Owner tag: the accountable team."
  type        = string

  validation {
    condition     = length(var.owner) > 0
    error_message = "owner must not be empty."
  }
}

variable "tags" {
  description = "Extra tags merged onto every resource (cannot override the standard tags)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network and access
# ---------------------------------------------------------------------------------------------

variable "vnet_cidr" {
  description = "Address space of the VNet: first /18 for AKS nodes, a /24 for private endpoints."
  type        = string
  default     = "10.60.0.0/16"

  validation {
    condition     = can(cidrhost(var.vnet_cidr, 0)) && tonumber(split("/", var.vnet_cidr)[1]) <= 16
    error_message = "vnet_cidr must be a valid CIDR of size /16 or larger."
  }
}

variable "admin_ip_ranges" {
  description = "Public CIDRs of admins/CI allowed through the Key Vault and registry firewalls (Terraform writes keys and secrets, CI pushes images). Never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.admin_ip_ranges : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "admin_ip_ranges must be valid CIDRs and must not contain 0.0.0.0/0."
  }
}

variable "availability_zones" {
  description = "Zones for the node pools and zone-redundant Postgres HA (empty in regions without zones)."
  type        = list(string)
  default     = ["1", "2", "3"]

  validation {
    condition     = alltrue([for z in var.availability_zones : contains(["1", "2", "3"], z)])
    error_message = "availability_zones may only contain \"1\", \"2\" and \"3\"."
  }
}

# ---------------------------------------------------------------------------------------------
# Kubernetes (AKS)
# ---------------------------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "AKS Kubernetes version (minor, e.g. 1.34); null takes the region's default. Patch upgrades are automatic."
  type        = string
  default     = null

  validation {
    condition     = var.kubernetes_version == null || can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.34 (or be null)."
  }
}

variable "aks_sku_tier" {
  description = "AKS control-plane tier: Standard (financially backed SLA, prod) or Free (dev)."
  type        = string
  default     = "Standard"

  validation {
    condition     = contains(["Free", "Standard"], var.aks_sku_tier)
    error_message = "aks_sku_tier must be Free or Standard."
  }
}

variable "cluster_admin_group_object_ids" {
  description = "Entra ID group object ids granted cluster-admin (local accounts are disabled)."
  type        = list(string)
  default     = []
}

variable "system_node_vm_size" {
  description = "VM size of the on-demand system pool (Dagster services, MLflow). Needs a local temp disk for ephemeral OS disks (e.g. Standard_D2ds_v5)."
  type        = string
  default     = "Standard_D2ds_v5"
}

variable "system_node_count" {
  description = "Nodes in the on-demand system pool."
  type        = number
  default     = 2

  validation {
    condition     = var.system_node_count >= 1 && var.system_node_count <= 10
    error_message = "system_node_count must be between 1 and 10."
  }
}

variable "spot_node_vm_size" {
  description = "VM size of the Spot pool for runs, step pods and training (local temp disk required, e.g. Standard_D4ds_v5)."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "spot_node_max_count" {
  description = "Maximum Spot nodes; the pool scales from zero."
  type        = number
  default     = 5

  validation {
    condition     = var.spot_node_max_count >= 1 && var.spot_node_max_count <= 100
    error_message = "spot_node_max_count must be between 1 and 100."
  }
}

variable "os_disk_size_gb" {
  description = "Ephemeral OS disk size; must fit the VM size's temp disk (75 GB on D2ds_v5, 150 GB on D4ds_v5)."
  type        = number
  default     = 64

  validation {
    condition     = var.os_disk_size_gb >= 30 && var.os_disk_size_gb <= 2048
    error_message = "os_disk_size_gb must be between 30 and 2048."
  }
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace (AKS, storage, Key Vault and Postgres diagnostics)."
  type        = number
  default     = 30

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "k8s_namespace" {
  description = "Namespace of Dagster and MLflow; workload identities federate service accounts in it."
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

variable "storage_replication_type" {
  description = "Replication of the data storage account: RAGZRS (zone + geo redundant, prod) or LRS/ZRS (dev)."
  type        = string
  default     = "RAGZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "cool_after_days" {
  description = "Blobs not read for this many days move to the Cool tier (and back to Hot when read)."
  type        = number
  default     = 30

  validation {
    condition     = var.cool_after_days >= 1
    error_message = "cool_after_days must be >= 1."
  }
}

variable "cold_after_days" {
  description = "Blobs not read for this many days move to the Cold tier."
  type        = number
  default     = 90

  validation {
    condition     = var.cold_after_days > var.cool_after_days
    error_message = "cold_after_days must be greater than cool_after_days."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which previous blob versions are deleted."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 7
    error_message = "Keep previous versions for at least 7 days."
  }
}

variable "blob_soft_delete_days" {
  description = "Soft-delete retention of blobs and containers; the point-in-time-restore window is one day shorter."
  type        = number
  default     = 14

  validation {
    condition     = var.blob_soft_delete_days >= 2 && var.blob_soft_delete_days <= 365
    error_message = "blob_soft_delete_days must be between 2 and 365."
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

variable "azureml_workspace_id" {
  description = "Resource id of the Azure ML workspace whose managed online endpoints serve models; null when not used yet."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL flexible server
# ---------------------------------------------------------------------------------------------

variable "db_sku_name" {
  description = "Flexible server SKU, e.g. B_Standard_B1ms (dev) or GP_Standard_D2ds_v5 (prod; HA needs General Purpose)."
  type        = string
  default     = "GP_Standard_D2ds_v5"

  validation {
    condition     = can(regex("^(B|GP|MO)_Standard_[A-Za-z0-9_]+$", var.db_sku_name))
    error_message = "db_sku_name must look like B_Standard_B1ms or GP_Standard_D2ds_v5."
  }
}

variable "db_storage_mb" {
  description = "Storage of the flexible server in MB (auto-grows)."
  type        = number
  default     = 32768

  validation {
    condition     = contains([32768, 65536, 131072, 262144, 524288, 1048576], var.db_storage_mb)
    error_message = "db_storage_mb must be one of the flexible server storage sizes (32768 ... 1048576)."
  }
}

variable "db_high_availability" {
  description = "Zone-redundant HA standby. On in prod (not available on Burstable SKUs)."
  type        = bool
  default     = true

  validation {
    condition     = !var.db_high_availability || !startswith(var.db_sku_name, "B_")
    error_message = "High availability needs a General Purpose or Memory Optimized SKU."
  }
}

variable "db_geo_redundant_backup" {
  description = "Copy backups to the paired region (restore there after a regional outage). On in prod."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Backup retention, which is also the point-in-time-restore window."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_deletion_protection" {
  description = "CanNotDelete management lock on the server. On in prod."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Registry, budget
# ---------------------------------------------------------------------------------------------

variable "registry_geo_replica_location" {
  description = "Second region of the (Premium) container registry; null for no geo-replica."
  type        = string
  default     = null
}

variable "monthly_budget_usd" {
  description = "Monthly budget (USD) for resources tagged with this stack."
  type        = number

  validation {
    condition     = var.monthly_budget_usd > 0
    error_message = "monthly_budget_usd must be positive."
  }
}

variable "budget_alert_emails" {
  description = "Addresses notified at 80% actual and 100% forecast spend."
  type        = list(string)

  validation {
    condition     = length(var.budget_alert_emails) > 0 && alltrue([for e in var.budget_alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "budget_alert_emails must hold at least one valid e-mail address."
  }
}
