# Prod: HA. NAT gateway and system node per zone, Multi-AZ Postgres with 14 days of PITR,
# deletion protection, and cross-region replication of the data bucket.
region         = "us-east-1"
replica_region = "us-west-2"
cost_center    = "ml-platform"
owner          = "mlops-team"

availability_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
single_nat_gateway = false

kubernetes_version           = "1.34"
cluster_admin_principal_arns = []
cluster_log_retention_days   = 365

system_node_instance_types = ["m6i.large"]
system_node_count          = 3
spot_node_instance_types   = ["m6i.xlarge", "m6a.xlarge", "m5.xlarge"]
spot_node_max_count        = 10
node_disk_size_gb          = 100

db_instance_class        = "db.m7g.large"
db_allocated_storage_gb  = 50
db_multi_az              = true
db_backup_retention_days = 14
db_deletion_protection   = true

replication_enabled                = true
noncurrent_version_expiration_days = 90

monthly_budget_usd  = 1500
budget_alert_emails = ["mlops-team@example.com"]
