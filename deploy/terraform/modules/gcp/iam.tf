# Workload Identity: Kubernetes service accounts act as Google service accounts; no keys exist.
# Bucket access is scoped with IAM Conditions to the prefixes each identity needs.

locals {
  vertex_deployer_permissions = [
    "aiplatform.models.upload",
    "aiplatform.models.get",
    "aiplatform.endpoints.create",
    "aiplatform.endpoints.list",
    "aiplatform.endpoints.deploy",
    "aiplatform.endpoints.undeploy",
    "aiplatform.endpoints.predict",
    "aiplatform.endpoints.delete",
    "aiplatform.operations.get",
  ]

  artifact_prefix_condition = join(" || ", [
    "resource.type == \"storage.googleapis.com/Bucket\"",
    "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/${local.mlflow_prefix}/\")",
  ])
}

resource "google_service_account" "dagster" {
  project      = var.project_id
  account_id   = "${local.sa_prefix}-dagster"
  display_name = "Dagster pods of ${local.prefix}"
}

resource "google_service_account" "mlflow" {
  project      = var.project_id
  account_id   = "${local.sa_prefix}-mlflow"
  display_name = "MLflow tracking server of ${local.prefix}"
}

# Identity that Vertex AI endpoints run as (custom service account of the deployed models).
resource "google_service_account" "vertex" {
  project      = var.project_id
  account_id   = "${local.sa_prefix}-vertex"
  display_name = "Vertex AI endpoints of ${local.prefix}"
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each = {
    dagster = { gsa = google_service_account.dagster.name, ksa = var.dagster_service_account }
    mlflow  = { gsa = google_service_account.mlflow.name, ksa = var.mlflow_service_account }
  }

  service_account_id = each.value.gsa
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${var.k8s_namespace}/${each.value.ksa}]"

  depends_on = [google_container_cluster.this]
}

# Dagster reads and writes the whole data bucket (lake, artifacts, compute logs, registry exports,
# and the landing zone: objectUser gets, creates and deletes objects under landing/ and
# quarantine/, which the landing sensor and ingest runs need to read and quarantine landed files).
# The landing sensor lists landing/ (there are no Pub/Sub notifications: no emulator runs them
# in tests here, so the gcp profile runs in listing mode and no topic is created).
resource "google_storage_bucket_iam_member" "dagster" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.dagster.email}"
}

# GCSComputeLogManager checks at start-up that its bucket exists (storage.buckets.get), which
# objectUser does not grant; legacyBucketReader grants it (and object listing) on this bucket only.
resource "google_storage_bucket_iam_member" "dagster_bucket_metadata" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.legacyBucketReader"
  member = "serviceAccount:${google_service_account.dagster.email}"
}

resource "google_storage_bucket_iam_member" "mlflow" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.mlflow.email}"

  condition {
    title       = "mlflow-artifacts-only"
    description = "Objects under ${local.mlflow_prefix}/ (and listing)"
    expression  = local.artifact_prefix_condition
  }
}

resource "google_storage_bucket_iam_member" "vertex_readers" {
  for_each = {
    endpoint = "serviceAccount:${google_service_account.vertex.email}"
    agent    = "serviceAccount:${google_project_service_identity.this["aiplatform.googleapis.com"].email}"
  }

  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = each.value

  condition {
    title       = "model-artifacts-read-only"
    description = "Read objects under ${local.mlflow_prefix}/"
    expression  = local.artifact_prefix_condition
  }
}

# Dagster deploys models to Vertex AI endpoints and lets them run as the vertex identity. Not
# roles/aiplatform.user (every Vertex AI resource of the project: datasets, training jobs,
# notebooks, feature stores, generative models): a custom role with only what the deployer
# calls - upload/get/list/delete models, create/get/list/update endpoints, deploy/undeploy models
# on them, send predictions (smoke test) and follow the long-running operations these start.
# IAM keeps a deleted custom role for 7 days and refuses its id meanwhile: recreate a destroyed
# environment under another name, or undelete the role.
resource "google_project_iam_custom_role" "vertex_deployer" {
  project     = var.project_id
  role_id     = "${replace(local.prefix, "-", "_")}_vertex_deployer"
  title       = "Vertex AI deployer of ${local.prefix}"
  description = "Models and endpoints the Dagster deployer of ${local.prefix} manages; nothing else of Vertex AI."
  permissions = local.vertex_deployer_permissions
}

resource "google_project_iam_member" "dagster_vertex" {
  project = var.project_id
  role    = google_project_iam_custom_role.vertex_deployer.id
  member  = "serviceAccount:${google_service_account.dagster.email}"
}

# Drift, performance and retrain figures go to Cloud Monitoring as custom metrics
# (custom.googleapis.com/mlops_platform/..., mlops_platform/profiles/metrics.py). metricWriter
# writes time series and creates (gets, lists) their metric descriptors; it reads no time series
# and touches no alerting policy. No narrower scope exists: Cloud Monitoring grants only on a project (or folder or
# organization), time series and metric descriptors are not IAM resources, and IAM Conditions
# cannot name a metric type.
resource "google_project_iam_member" "dagster_metrics" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.dagster.email}"
}

# iam.serviceAccounts.actAs on the endpoint identity only (deployModel runs the model as it).
resource "google_service_account_iam_member" "dagster_acts_as_vertex" {
  service_account_id = google_service_account.vertex.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.dagster.email}"
}

resource "google_project_iam_member" "vertex_logging" {
  for_each = toset(["roles/logging.logWriter", "roles/monitoring.metricWriter"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.vertex.email}"
}
