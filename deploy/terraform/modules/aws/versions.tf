terraform {
  # 1.9+ lets a validation refer to other variables; 1.10+ brings S3 native state locking.
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.40"
      # `aws.replica` is the disaster-recovery region that receives the bucket replica.
      configuration_aliases = [aws.replica]
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
