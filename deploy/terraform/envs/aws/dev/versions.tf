terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.40"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # Remote state in S3 with native locking; values come from backend.hcl
  # (copy backend.hcl.example): terraform init -backend-config=backend.hcl
  backend "s3" {}
}
