provider "azurerm" {
  subscription_id = var.subscription_id

  # Entra ID instead of account keys for storage (shared keys are disabled on the account).
  storage_use_azuread = true

  features {
    key_vault {
      # Purge protection is on: a destroyed vault stays recoverable for 90 days.
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }

    storage {
      # The storage account has no public network access; never call its data plane.
      data_plane_available = false
    }
  }
}
