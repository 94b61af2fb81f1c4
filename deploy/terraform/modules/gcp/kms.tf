# Customer-managed keys. Cloud KMS keys are regional: one key ring in the region (Cloud SQL, GKE
# secrets, Artifact Registry) and one in the bucket's location (may be a dual-region).

resource "google_kms_key_ring" "this" {
  project  = var.project_id
  name     = "${local.prefix}-${var.region}"
  location = var.region

  depends_on = [google_project_service.this]
}

resource "google_kms_crypto_key" "platform" {
  name            = "platform"
  key_ring        = google_kms_key_ring.this.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "7776000s" # 90 days
  labels          = local.labels

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_key_ring" "storage" {
  project  = var.project_id
  name     = "${local.prefix}-storage-${lower(var.bucket_location)}"
  location = lower(var.bucket_location)

  depends_on = [google_project_service.this]
}

resource "google_kms_crypto_key" "storage" {
  name            = "storage"
  key_ring        = google_kms_key_ring.storage.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "7776000s" # 90 days
  labels          = local.labels

  lifecycle {
    prevent_destroy = true
  }
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "storage_gcs" {
  crypto_key_id = google_kms_crypto_key.storage.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_kms_crypto_key_iam_member" "platform" {
  for_each = {
    cloudsql = "serviceAccount:${google_project_service_identity.this["sqladmin.googleapis.com"].email}"
    registry = "serviceAccount:${google_project_service_identity.this["artifactregistry.googleapis.com"].email}"
    gke      = "serviceAccount:service-${local.project_number}@container-engine-robot.iam.gserviceaccount.com"
  }

  crypto_key_id = google_kms_crypto_key.platform.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}
