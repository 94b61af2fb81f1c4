terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.65"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # Remote state in an Azure Storage container (Entra ID auth, blob lease locking); values come
  # from backend.hcl (copy backend.hcl.example): terraform init -backend-config=backend.hcl
  backend "azurerm" {}
}
