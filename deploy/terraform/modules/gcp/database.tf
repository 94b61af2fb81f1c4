# Cloud SQL for PostgreSQL (Enterprise edition): private IP only, TLS only, CMEK, daily backups
# with point-in-time recovery, databases for the Dagster instance and the MLflow backend store.

resource "random_password" "db" {
  length           = 32
  special          = true
  override_special = "-_" # URL-safe: the password is embedded in the MLflow backend-store URI
}

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY enforces TLS on every connection; requiring client certificates would need the Cloud SQL Auth Proxy in every Dagster run and step pod.
  #checkov:skip=CKV2_GCP_13:log_duration would log every statement of Dagster's event-log polling; slow statements are visible in Query Insights (enabled below).
  project             = var.project_id
  name                = "${local.prefix}-postgres"
  region              = var.region
  database_version    = "POSTGRES_18"
  encryption_key_name = google_kms_crypto_key.platform.id
  deletion_protection = var.db_deletion_protection

  settings {
    edition                     = "ENTERPRISE"
    tier                        = var.db_tier
    availability_type           = var.db_high_availability ? "REGIONAL" : "ZONAL"
    disk_type                   = "PD_SSD"
    disk_size                   = var.db_disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.db_deletion_protection
    user_labels                 = local.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.this.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = "02:00"
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.db_pitr_days

      backup_retention_settings {
        retained_backups = var.db_backup_retention_count
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = 7
      hour         = 3
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled = true
    }

    # Audit and diagnostics flags (CIS PostgreSQL benchmark for Cloud SQL).
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "warning"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }
  }

  depends_on = [
    google_service_networking_connection.private_services,
    google_kms_crypto_key_iam_member.platform,
  ]
}

resource "google_sql_database" "this" {
  for_each = toset(["dagster", "mlflow"])

  project  = var.project_id
  name     = each.value
  instance = google_sql_database_instance.this.name
}

resource "google_sql_user" "mlops" {
  project  = var.project_id
  name     = "mlops"
  instance = google_sql_database_instance.this.name
  password = random_password.db.result
}

# The password in Secret Manager; the Helm install step copies it into the Kubernetes secret that
# the Dagster chart (global.postgresqlSecretName) reads. MLflow has its own user and secret below.
resource "google_secret_manager_secret" "db" {
  project   = var.project_id
  secret_id = "${local.prefix}-postgres-password"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "db" {
  secret      = google_secret_manager_secret.db.id
  secret_data = random_password.db.result
}

# MLflow's own Postgres user. Not a google_sql_user: Cloud SQL makes API-created users members of
# cloudsqlsuperuser, which could open Dagster's database. The Job
# deploy/helm/mlflow/mlflow-database.yaml creates it as a plain LOGIN role owning "mlflow" with this
# password; the MLflow pods read it from their own Kubernetes secret (mlflow-postgresql-secret).
resource "random_password" "mlflow_db" {
  length           = 32
  special          = true
  override_special = "-_" # URL-safe: the password is embedded in the MLflow backend-store URI
}

resource "google_secret_manager_secret" "mlflow_db" {
  project   = var.project_id
  secret_id = "${local.prefix}-postgres-mlflow-password"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "mlflow_db" {
  secret      = google_secret_manager_secret.mlflow_db.id
  secret_data = random_password.mlflow_db.result
}
