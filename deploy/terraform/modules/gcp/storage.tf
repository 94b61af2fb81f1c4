# One data bucket with prefixes lake/, mlflow/, dagster/compute-logs/, landing/, quarantine/ and
# backups/, plus a bucket for its usage logs. GCS serves authenticated requests over TLS only (HTTPS endpoints).

resource "google_storage_bucket" "data" {
  project                     = var.project_id
  name                        = "${local.prefix}-data-${var.project_id}"
  location                    = var.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = merge(local.labels, { data_class = "platform-data" })

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.storage.id
  }

  # Autoclass moves objects that are not read to Nearline/Coldline/Archive and back when read.
  autoclass {
    enabled                = true
    terminal_storage_class = "ARCHIVE"
  }

  soft_delete_policy {
    retention_duration_seconds = 604800 # 7 days
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_expiration_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.compute_log_retention_days
      matches_prefix = ["${local.compute_logs_prefix}/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.backup_retention_days
      matches_prefix = ["${local.backups_prefix}/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = "data"
  }

  depends_on = [google_kms_crypto_key_iam_member.storage_gcs]
}

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This bucket is the usage-log target; logging it into itself would loop.
  project                     = var.project_id
  name                        = "${local.prefix}-logs-${var.project_id}"
  location                    = var.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = merge(local.labels, { data_class = "audit-logs" })

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.storage.id
  }

  lifecycle_rule {
    condition {
      age = var.access_log_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.storage_gcs]
}

# GCS writes usage logs as this Google group.
resource "google_storage_bucket_iam_member" "access_logs_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}
