terraform {
  # 1.9+ lets a validation refer to other variables.
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.65 introduced azurerm_federated_identity_credential.user_assigned_identity_id (4.60-4.64
      # call it parent_id); 4.42 rbac_authorization_enabled. azurerm 5.x has breaking changes this
      # module has not been migrated to yet (see deploy/README.md). tests/deploy checks the floor
      # against a table of arguments whose first version matters.
      version = "~> 4.65"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
