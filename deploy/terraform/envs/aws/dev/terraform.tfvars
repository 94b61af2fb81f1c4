# Dev: small and cheap. One NAT gateway, single-AZ Postgres, burstable nodes, spot for all runs.
region         = "us-east-1"
replica_region = "us-west-2"
cost_center    = "ml-platform"
owner          = "mlops-team"

availability_zones = ["us-east-1a", "us-east-1b"]
single_nat_gateway = true

kubernetes_version           = "1.34"
cluster_admin_principal_arns = []
cluster_log_retention_days   = 365

system_node_instance_types = ["t3.large"]
system_node_count          = 1
spot_node_instance_types   = ["m6i.xlarge", "m6a.xlarge", "m5.xlarge"]
spot_node_max_count        = 3
node_disk_size_gb          = 50

db_instance_class        = "db.t4g.small"
db_allocated_storage_gb  = 20
db_multi_az              = false
db_backup_retention_days = 7
db_deletion_protection   = false

replication_enabled                = false
noncurrent_version_expiration_days = 60

monthly_budget_usd  = 300
budget_alert_emails = ["mlops-team@example.com"]
