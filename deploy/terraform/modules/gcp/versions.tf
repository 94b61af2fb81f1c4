terraform {
  # 1.9+ lets a validation refer to other variables.
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.40"
    }
    # Only for google_project_service_identity (the service agents that use the CMEK key).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.40"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
