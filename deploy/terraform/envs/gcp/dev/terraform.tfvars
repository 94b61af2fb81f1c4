# Dev: small and cheap. Zonal cluster (covered by the GKE free tier), zonal Cloud SQL on a
# shared-core tier, regional bucket, Spot for every run.
project_id         = "REPLACE-gcp-project-id"
region             = "us-central1"
zones              = ["us-central1-a"]
regional_cluster   = false
billing_account_id = "000000-000000-000000"
cost_center        = "ml-platform"
owner              = "mlops-team"

master_authorized_networks = []

system_node_machine_type    = "e2-standard-2"
system_node_count           = 1
spot_node_machine_type      = "e2-standard-4"
spot_node_max_count         = 3
node_disk_size_gb           = 50
cluster_deletion_protection = false

db_tier                   = "db-g1-small"
db_disk_size_gb           = 20
db_high_availability      = false
db_backup_retention_count = 7
db_deletion_protection    = false

bucket_location                    = "us-central1"
noncurrent_version_expiration_days = 60

monthly_budget_usd  = 250
budget_alert_emails = ["mlops-team@example.com"]
