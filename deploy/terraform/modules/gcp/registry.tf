# Artifact Registry (Docker) for the user-code image and the Vertex AI serving image.
resource "google_artifact_registry_repository" "this" {
  project       = var.project_id
  location      = var.region
  repository_id = local.prefix
  description   = "Images of ${local.prefix}: user-code and serving"
  format        = "DOCKER"
  kms_key_name  = google_kms_crypto_key.platform.id
  labels        = local.labels

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.image_retention_count
    }
  }

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "604800s"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.platform]
}

resource "google_artifact_registry_repository_iam_member" "readers" {
  for_each = {
    nodes          = "serviceAccount:${google_service_account.nodes.email}"
    vertex         = "serviceAccount:${google_service_account.vertex.email}"
    vertex_service = "serviceAccount:${google_project_service_identity.this["aiplatform.googleapis.com"].email}"
  }

  project    = var.project_id
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}
