# Prod: HA. Standard AKS tier (SLA) over three zones, zone-redundant Postgres HA with
# geo-redundant backups and a delete lock, RA-GZRS storage, geo-replicated registry.
subscription_id = "00000000-0000-0000-0000-000000000000"
location        = "eastus"
cost_center     = "ml-platform"
owner           = "mlops-team"

admin_ip_ranges    = ["203.0.113.0/24"]
availability_zones = ["1", "2", "3"]

aks_sku_tier                   = "Standard"
cluster_admin_group_object_ids = []
system_node_vm_size            = "Standard_D2ds_v5"
system_node_count              = 3
spot_node_vm_size              = "Standard_D4ds_v5"
spot_node_max_count            = 10
os_disk_size_gb                = 64
log_retention_days             = 90

storage_replication_type           = "RAGZRS"
noncurrent_version_expiration_days = 90

db_sku_name              = "GP_Standard_D2ds_v5"
db_storage_mb            = 65536
db_high_availability     = true
db_geo_redundant_backup  = true
db_backup_retention_days = 14
db_deletion_protection   = true

registry_geo_replica_location = "westus2"

monthly_budget_usd  = 1500
budget_alert_emails = ["mlops-team@example.com"]
