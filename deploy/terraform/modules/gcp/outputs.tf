output "cluster_name" {
  description = "GKE cluster name (gcloud container clusters get-credentials ...)."
  value       = google_container_cluster.this.name
}

output "cluster_location" {
  description = "Region (regional cluster) or zone (zonal cluster) of the cluster."
  value       = google_container_cluster.this.location
}

output "bucket_name" {
  description = "Data bucket (lake, MLflow artifacts, compute logs, landing zone, quarantine)."
  value       = google_storage_bucket.data.name
}

output "storage_root" {
  description = "MLOPS_STORAGE_ROOT: root URI of the Delta lake."
  value       = "gs://${google_storage_bucket.data.name}/${local.lake_prefix}"
}

output "mlflow_artifact_root" {
  description = "MLOPS_MLFLOW_ARTIFACT_ROOT: MLflow artifact store."
  value       = "gs://${google_storage_bucket.data.name}/${local.mlflow_prefix}"
}

output "registry_url" {
  description = "Artifact Registry Docker repository URL (images user-code and serving)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}

output "db_private_ip" {
  description = "Private IP of Cloud SQL."
  value       = google_sql_database_instance.this.private_ip_address
}

output "db_username" {
  description = "Postgres admin user, the one Dagster runs as."
  value       = google_sql_user.mlops.name
}

output "db_password_secret" {
  description = "Secret Manager secret holding the Postgres admin (Dagster) password."
  value       = google_secret_manager_secret.db.id
}

output "mlflow_db_username" {
  description = "Postgres user of the MLflow backend (created by the mlflow-database Job)."
  value       = local.mlflow_db_username
}

output "mlflow_db_password_secret" {
  description = "Secret Manager secret holding the MLflow Postgres password."
  value       = google_secret_manager_secret.mlflow_db.id
}

output "dagster_gsa_email" {
  description = "Google service account of the Dagster pods."
  value       = google_service_account.dagster.email
}

output "mlflow_gsa_email" {
  description = "Google service account of the MLflow server."
  value       = google_service_account.mlflow.email
}

output "vertex_service_account_email" {
  description = "Service account Vertex AI endpoints run as (reads mlflow/ artifacts, pulls the serving image)."
  value       = google_service_account.vertex.email
}

output "kms_key_ids" {
  description = "Customer-managed keys (platform: SQL, GKE secrets, registry; storage: buckets)."
  value = {
    platform = google_kms_crypto_key.platform.id
    storage  = google_kms_crypto_key.storage.id
  }
}

output "node_pools" {
  description = "Node label key/values and the spot taint that the Helm values select and tolerate."
  value = {
    label_key    = "mlops-platform/pool"
    system_value = "system"
    spot_value   = "spot"
    spot_taint   = { key = "mlops-platform/pool", value = "spot", effect = "NoSchedule" }
  }
}

output "helm_env" {
  description = "Values substituted into deploy/helm (envsubst placeholders); see deploy/README.md."
  value = {
    CLOUD_REGION               = var.region
    GCP_PROJECT                = var.project_id
    DAGSTER_WORKLOAD_IDENTITY  = google_service_account.dagster.email
    MLFLOW_WORKLOAD_IDENTITY   = google_service_account.mlflow.email
    USER_CODE_IMAGE_REPOSITORY = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}/user-code"
    SERVING_IMAGE_REPOSITORY   = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}/serving"
    DB_HOST                    = google_sql_database_instance.this.private_ip_address
    DB_USERNAME                = google_sql_user.mlops.name
    MLFLOW_DB_USERNAME         = local.mlflow_db_username
    BUCKET                     = google_storage_bucket.data.name
    COMPUTE_LOGS_PREFIX        = local.compute_logs_prefix
    MLOPS_STORAGE_ROOT         = "gs://${google_storage_bucket.data.name}/${local.lake_prefix}"
    MLOPS_MLFLOW_ARTIFACT_ROOT = "gs://${google_storage_bucket.data.name}/${local.mlflow_prefix}"
    BACKUP_ROOT                = "gs://${google_storage_bucket.data.name}/${local.backups_prefix}"
    VERTEX_SERVICE_ACCOUNT     = google_service_account.vertex.email
  }
}

output "prefixes" {
  description = "Key prefixes inside the data bucket/container: Delta lake, MLflow artifacts, Dagster compute logs, landing zone, quarantine, registry exports."
  value = {
    lake         = local.lake_prefix
    mlflow       = local.mlflow_prefix
    compute_logs = local.compute_logs_prefix
    landing      = local.landing_prefix
    quarantine   = local.quarantine_prefix
    backups      = local.backups_prefix
  }
}
