# Dev: small and cheap. Free AKS tier, one zone, burstable Postgres without HA or geo backups,
# locally redundant storage, Spot for every run.
subscription_id = "00000000-0000-0000-0000-000000000000"
location        = "eastus"
cost_center     = "ml-platform"
owner           = "mlops-team"

admin_ip_ranges    = ["203.0.113.0/24"]
availability_zones = ["1"]

aks_sku_tier                   = "Free"
cluster_admin_group_object_ids = []
system_node_vm_size            = "Standard_D2ds_v5"
system_node_count              = 1
spot_node_vm_size              = "Standard_D4ds_v5"
spot_node_max_count            = 3
os_disk_size_gb                = 64
log_retention_days             = 30

storage_replication_type           = "LRS"
noncurrent_version_expiration_days = 60

db_sku_name              = "B_Standard_B1ms"
db_storage_mb            = 32768
db_high_availability     = false
db_geo_redundant_backup  = false
db_backup_retention_days = 7
db_deletion_protection   = false

monthly_budget_usd  = 300
budget_alert_emails = ["mlops-team@example.com"]
