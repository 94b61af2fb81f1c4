# Monthly subscription budget filtered to resources tagged Stack=<name>-<environment> (the AKS
# node resource group inherits the cluster's tags, so VM cost is included).
resource "azurerm_consumption_budget_subscription" "monthly" {
  name            = "${local.prefix}-monthly"
  subscription_id = data.azurerm_subscription.current.id
  amount          = var.monthly_budget_usd
  time_grain      = "Monthly"

  time_period {
    start_date = formatdate("YYYY-MM-01'T'00:00:00Z", timestamp())
  }

  filter {
    tag {
      name   = "Stack"
      values = [local.prefix]
    }
  }

  notification {
    enabled        = true
    operator       = "GreaterThan"
    threshold      = 80
    threshold_type = "Actual"
    contact_emails = var.budget_alert_emails
  }

  notification {
    enabled        = true
    operator       = "GreaterThan"
    threshold      = 100
    threshold_type = "Forecasted"
    contact_emails = var.budget_alert_emails
  }

  lifecycle {
    # The start date is fixed at creation (first day of that month).
    ignore_changes = [time_period]
  }
}
