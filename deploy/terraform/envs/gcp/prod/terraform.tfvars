# Prod: HA. Regional cluster over three zones, regional (HA) Cloud SQL with PITR and deletion
# protection, dual-region bucket (NAM4 = us-central1 + us-east1) for geo-redundancy.
project_id         = "REPLACE-gcp-project-id"
region             = "us-central1"
zones              = ["us-central1-a", "us-central1-b", "us-central1-c"]
regional_cluster   = true
billing_account_id = "000000-000000-000000"
cost_center        = "ml-platform"
owner              = "mlops-team"

master_authorized_networks = []

system_node_machine_type    = "e2-standard-2"
system_node_count           = 1
spot_node_machine_type      = "e2-standard-4"
spot_node_max_count         = 10
node_disk_size_gb           = 100
cluster_deletion_protection = true

db_tier                   = "db-custom-2-7680"
db_disk_size_gb           = 50
db_high_availability      = true
db_backup_retention_count = 14
db_deletion_protection    = true

bucket_location                    = "NAM4"
noncurrent_version_expiration_days = 90

monthly_budget_usd  = 1200
budget_alert_emails = ["mlops-team@example.com"]
