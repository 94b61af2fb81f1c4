data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Postgres role of the MLflow backend, separate from the admin user Dagster runs as.
  mlflow_db_username = "mlflow"
  prefix             = "${var.name}-${var.environment}"
  project_number     = data.google_project.this.number

  # Service account ids are limited to 30 characters.
  sa_prefix = trimsuffix(substr(local.prefix, 0, 21), "-")

  # Labels double as cost-allocation dimensions in the billing export; the budget filters on
  # stack. Extra labels: set default_labels on the google provider of the environment.
  labels = {
    project     = var.name
    environment = var.environment
    stack       = local.prefix
    cost_center = var.cost_center
    owner       = var.owner
    managed_by  = "terraform"
  }

  cluster_location = var.regional_cluster ? var.region : var.zones[0]
  node_locations   = var.regional_cluster ? var.zones : [var.zones[0]]

  lake_prefix         = "lake"
  mlflow_prefix       = "mlflow"
  compute_logs_prefix = "dagster/compute-logs"
  landing_prefix      = "landing"
  quarantine_prefix   = "quarantine"
  backups_prefix      = "backups"

  workload_pool = "${var.project_id}.svc.id.goog"
}

resource "google_project_service" "this" {
  for_each = toset([
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudkms.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Service agents that encrypt with the platform key; they must exist before they can be granted.
resource "google_project_service_identity" "this" {
  provider = google-beta
  for_each = toset(["sqladmin.googleapis.com", "artifactregistry.googleapis.com", "aiplatform.googleapis.com"])

  project = var.project_id
  service = each.value

  depends_on = [google_project_service.this]
}
