terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.40"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.40"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # Remote state in a GCS bucket (versioned, with locking); values come from backend.hcl
  # (copy backend.hcl.example): terraform init -backend-config=backend.hcl
  backend "gcs" {}
}
