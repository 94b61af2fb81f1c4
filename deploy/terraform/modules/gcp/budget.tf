# Monthly budget on the project, filtered to resources labelled stack=<name>-<environment>.
resource "google_monitoring_notification_channel" "budget" {
  for_each = toset(var.budget_alert_emails)

  project      = var.project_id
  display_name = "${local.prefix} budget: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }
  user_labels = local.labels
}

resource "google_billing_budget" "monthly" {
  billing_account = var.billing_account_id
  display_name    = "${local.prefix}-monthly"

  budget_filter {
    projects               = ["projects/${local.project_number}"]
    labels                 = { stack = local.prefix }
    calendar_period        = "MONTH"
    credit_types_treatment = "INCLUDE_ALL_CREDITS"
  }

  amount {
    specified_amount {
      currency_code = "USD"
      units         = tostring(floor(var.monthly_budget_usd))
    }
  }

  threshold_rules {
    threshold_percent = 0.5
  }
  threshold_rules {
    threshold_percent = 0.8
  }
  threshold_rules {
    threshold_percent = 1.0
  }
  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  all_updates_rule {
    monitoring_notification_channels = [for c in google_monitoring_notification_channel.budget : c.id]
    disable_default_iam_recipients   = false
  }

  depends_on = [google_project_service.this]
}
