data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

# Resolves the pinned zones (and fails the plan if one does not exist in the region).
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = var.availability_zones
  }
}

locals {
  # Postgres role of the MLflow backend, separate from the admin user Dagster runs as.
  mlflow_db_username = "mlflow"
  prefix             = "${var.name}-${var.environment}"
  account_id         = data.aws_caller_identity.current.account_id
  partition          = data.aws_partition.current.partition
  region             = data.aws_region.current.region
  azs                = sort(data.aws_availability_zones.selected.names)
  az_count           = length(var.availability_zones)

  # Cost-allocation tags: activate Project, Environment, Stack and CostCenter as user-defined
  # cost allocation tags in the Billing console; the budget filters on Stack.
  tags = merge(var.tags, {
    Project     = var.name
    Environment = var.environment
    Stack       = local.prefix
    CostCenter  = var.cost_center
    Owner       = var.owner
    ManagedBy   = "terraform"
  })

  cluster_name = local.prefix
  bucket_name  = "${local.prefix}-data-${local.account_id}"

  # Prefixes inside the data bucket; the platform reads them from MLOPS_STORAGE_ROOT,
  # MLOPS_MLFLOW_ARTIFACT_ROOT and the compute log manager config. landing/ and quarantine/ are
  # the platform's defaults beside the lake (MLOPS_LANDING_ROOT, MLOPS_QUARANTINE_ROOT).
  lake_prefix         = "lake"
  mlflow_prefix       = "mlflow"
  compute_logs_prefix = "dagster/compute-logs"
  landing_prefix      = "landing"
  quarantine_prefix   = "quarantine"
  backups_prefix      = "backups"

  oidc_issuer_host = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}
