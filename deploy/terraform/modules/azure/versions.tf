terraform {
  # 1.9+ lets a validation refer to other variables.
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.42 introduced rbac_authorization_enabled; azurerm 5.x has breaking changes this module
      # has not been migrated to yet (see deploy/README.md).
      version = "~> 4.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
