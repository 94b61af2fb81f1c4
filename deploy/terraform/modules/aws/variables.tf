# ---------------------------------------------------------------------------------------------
# Identity and tagging
# ---------------------------------------------------------------------------------------------

variable "name" {
  description = "Short platform name; prefixes every resource name (together with the environment)."
  type        = string
  default     = "mlops-platform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}[a-z0-9]$", var.name))
    error_message = "name must be 4-22 characters of lowercase letters, digits and hyphens, starting with a letter."
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

variable "cost_center" {
  description = "Value of the CostCenter cost-allocation tag (activate it in the Billing console)."
  type        = string

  validation {
    condition     = length(var.cost_center) > 0 && length(var.cost_center) <= 64
    error_message = "cost_center must be 1-64 characters."
  }
}

variable "owner" {
  description = "Team or person accountable for the stack; the Owner tag."
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
# Network
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into one public and one private subnet per availability zone."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be a valid IPv4 CIDR of size /20 or larger."
  }
}

variable "availability_zones" {
  description = "Availability zones (names, e.g. us-east-1a) used by subnets, node groups and Multi-AZ Postgres; pinned so the set never grows by itself."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "Give 2 or 3 distinct zones (EKS and RDS subnet groups need at least two)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheap, dev) instead of one per zone (zone-redundant egress, prod)."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention period CloudWatch Logs accepts."
  }
}

# ---------------------------------------------------------------------------------------------
# Kubernetes (EKS)
# ---------------------------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "EKS control-plane version (minor version, e.g. 1.34). Keep it in standard support to avoid extended-support fees."
  type        = string
  default     = "1.34"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.34."
  }
}

variable "cluster_endpoint_public_access" {
  description = "Expose the EKS API endpoint publicly (restricted to cluster_endpoint_public_access_cidrs). Off: reach it from the VPC (VPN, SSM bastion)."
  type        = bool
  default     = false
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public EKS API endpoint when it is enabled. Never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.cluster_endpoint_public_access_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "cluster_endpoint_public_access_cidrs must be valid CIDRs and must not contain 0.0.0.0/0."
  }

  validation {
    condition     = !var.cluster_endpoint_public_access || length(var.cluster_endpoint_public_access_cidrs) > 0
    error_message = "A public endpoint needs at least one allowed CIDR."
  }
}

variable "cluster_admin_principal_arns" {
  description = "IAM role/user ARNs granted cluster-admin through EKS access entries (the creator is admin too)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.cluster_admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", a))])
    error_message = "cluster_admin_principal_arns must be IAM role or user ARNs."
  }
}

variable "system_node_instance_types" {
  description = "Instance types of the on-demand pool that runs the Dagster webserver, daemon, user code server and MLflow."
  type        = list(string)
  default     = ["t3.large"]

  validation {
    condition     = length(var.system_node_instance_types) > 0
    error_message = "Give at least one instance type."
  }
}

variable "system_node_count" {
  description = "Nodes in the on-demand system pool (fixed size; one per zone for HA in prod)."
  type        = number
  default     = 2

  validation {
    condition     = var.system_node_count >= 1 && var.system_node_count <= 10
    error_message = "system_node_count must be between 1 and 10."
  }
}

variable "spot_node_instance_types" {
  description = "Instance types of the spot pool for Dagster runs, step pods and training. Several similar types raise spot availability."
  type        = list(string)
  default     = ["m6i.xlarge", "m6a.xlarge", "m5.xlarge"]

  validation {
    condition     = length(var.spot_node_instance_types) > 0
    error_message = "Give at least one instance type."
  }
}

variable "spot_node_max_count" {
  description = "Upper bound of the spot pool; it scales from zero when runs are pending and back to zero when idle."
  type        = number
  default     = 5

  validation {
    condition     = var.spot_node_max_count >= 1 && var.spot_node_max_count <= 100
    error_message = "spot_node_max_count must be between 1 and 100."
  }
}

variable "node_disk_size_gb" {
  description = "Root volume size of every node (container images and emptyDir scratch space)."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size_gb >= 20 && var.node_disk_size_gb <= 1000
    error_message = "node_disk_size_gb must be between 20 and 1000."
  }
}

variable "cluster_log_retention_days" {
  description = "Retention of the EKS control-plane logs in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.cluster_log_retention_days)
    error_message = "cluster_log_retention_days must be a retention period CloudWatch Logs accepts."
  }
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of Dagster and MLflow; workload identities are bound to service accounts in it."
  type        = string
  default     = "mlops"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.k8s_namespace))
    error_message = "k8s_namespace must be a valid Kubernetes namespace name."
  }
}

variable "dagster_service_account" {
  description = "Service account shared by the Dagster webserver, daemon, code server, run and step pods (Helm global.serviceAccountName)."
  type        = string
  default     = "dagster"
}

variable "mlflow_service_account" {
  description = "Service account of the MLflow tracking server."
  type        = string
  default     = "mlflow"
}

# ---------------------------------------------------------------------------------------------
# Object storage (lake + MLflow artifacts + compute logs, one bucket with prefixes)
# ---------------------------------------------------------------------------------------------

variable "intelligent_tiering_after_days" {
  description = "Age after which current object versions move to S3 Intelligent-Tiering (which then tiers unread data to cheaper access tiers)."
  type        = number
  default     = 0

  validation {
    condition     = var.intelligent_tiering_after_days >= 0
    error_message = "intelligent_tiering_after_days must be >= 0."
  }
}

variable "noncurrent_version_ia_after_days" {
  description = "Age after which non-current versions (the history Delta time travel and restores rely on) move to Standard-IA."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_ia_after_days >= 30
    error_message = "S3 only allows transitions to STANDARD_IA after 30 days or more."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current object versions are deleted; bounds how far back a bucket-level restore can go."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days > var.noncurrent_version_ia_after_days
    error_message = "noncurrent_version_expiration_days must be greater than noncurrent_version_ia_after_days."
  }
}

variable "compute_log_retention_days" {
  description = "Days Dagster compute logs (step stdout/stderr) are kept in the bucket."
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

variable "noncurrent_versions_to_keep" {
  description = "Newest non-current versions kept per object regardless of age."
  type        = number
  default     = 3

  validation {
    condition     = var.noncurrent_versions_to_keep >= 0 && var.noncurrent_versions_to_keep <= 100
    error_message = "noncurrent_versions_to_keep must be between 0 and 100."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs of the data bucket are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 30
    error_message = "Keep access logs for at least 30 days."
  }
}

variable "replication_enabled" {
  description = "Disaster recovery: replicate the data bucket and the RDS automated backups to the aws.replica provider's region."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Postgres (Dagster instance storage + MLflow backend store)
# ---------------------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL major version of the RDS instance."
  type        = string
  default     = "17"

  validation {
    condition     = contains(["16", "17"], var.db_engine_version)
    error_message = "db_engine_version must be 16 or 17."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.small"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "db_instance_class must look like db.t4g.small."
  }
}

variable "db_allocated_storage_gb" {
  description = "Initial gp3 storage of the RDS instance."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 65536
    error_message = "db_allocated_storage_gb must be between 20 and 65536."
  }
}

variable "db_max_allocated_storage_gb" {
  description = "Ceiling for RDS storage autoscaling."
  type        = number
  default     = 100

  validation {
    condition     = var.db_max_allocated_storage_gb >= var.db_allocated_storage_gb
    error_message = "db_max_allocated_storage_gb must be >= db_allocated_storage_gb."
  }
}

variable "db_multi_az" {
  description = "Synchronous standby in a second zone (HA). On in prod."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Automated backup retention; it is also the point-in-time-recovery window."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35 (0 would disable backups and PITR)."
  }
}

variable "db_deletion_protection" {
  description = "Block deletion of the database (and take a final snapshot on destroy). On in prod."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Registry, budget
# ---------------------------------------------------------------------------------------------

variable "image_retention_count" {
  description = "Tagged images kept per ECR repository; older ones expire."
  type        = number
  default     = 50

  validation {
    condition     = var.image_retention_count >= 5
    error_message = "Keep at least 5 images so rollbacks stay possible."
  }
}

variable "monthly_budget_usd" {
  description = "Monthly AWS Budgets limit for everything tagged with this stack."
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
