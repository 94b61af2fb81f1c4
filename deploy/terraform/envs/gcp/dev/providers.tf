# user_project_override + billing_project: the Billing Budgets API needs a quota project when
# Terraform runs with user credentials (gcloud auth application-default login).
provider "google" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}

provider "google-beta" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}
