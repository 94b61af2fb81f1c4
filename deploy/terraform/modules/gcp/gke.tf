# GKE with two node pools:
#   system: small on-demand pool for the Dagster webserver/daemon/code server and MLflow.
#   spot:   Spot VMs, autoscaling from zero, tainted; runs and step pods tolerate the taint.
# tests/deploy compares the label/taint below with the Helm values.

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${local.sa_prefix}-nodes"
  display_name = "GKE nodes of ${local.prefix}"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/autoscaling.metricsWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  project  = var.project_id
  name     = local.prefix
  location = local.cluster_location

  # Node pools are separate resources; the default pool is created and removed at once.
  remove_default_node_pool = true
  initial_node_count       = 1
  node_locations           = var.regional_cluster ? var.zones : null

  network         = google_compute_network.this.id
  subnetwork      = google_compute_subnetwork.nodes.id
  networking_mode = "VPC_NATIVE"

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.private_endpoint_only
    master_ipv4_cidr_block  = var.master_cidr

    master_global_access_config {
      enabled = false
    }
  }

  master_authorized_networks_config {
    gcp_public_cidrs_access_enabled = false

    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = local.workload_pool
  }

  # Dataplane V2 enforces NetworkPolicy (the MLflow server is reachable only from its namespace).
  datapath_provider = "ADVANCED_DATAPATH"
  network_policy {
    enabled = false
  }

  enable_intranode_visibility = true
  enable_legacy_abac          = false

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  database_encryption {
    state    = "ENCRYPTED"
    key_name = google_kms_crypto_key.platform.id
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  dynamic "authenticator_groups_config" {
    for_each = var.rbac_security_group == null ? [] : [var.rbac_security_group]
    content {
      security_group = authenticator_groups_config.value
    }
  }

  # Splits cluster cost by namespace and label in the billing export.
  cost_management_config {
    enabled = true
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
  }

  maintenance_policy {
    recurring_window {
      start_time = "2025-01-04T03:00:00Z"
      end_time   = "2025-01-04T09:00:00Z"
      recurrence = "FREQ=WEEKLY;BYDAY=SA,SU"
    }
  }

  # Settings of the short-lived default pool (removed above); hardened like the real pools.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  resource_labels     = local.labels
  deletion_protection = var.cluster_deletion_protection

  depends_on = [
    google_project_service.this,
    google_kms_crypto_key_iam_member.platform,
  ]
}

resource "google_container_node_pool" "system" {
  project        = var.project_id
  name           = "system"
  location       = local.cluster_location
  cluster        = google_container_cluster.this.name
  node_locations = local.node_locations
  node_count     = var.system_node_count

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = var.system_node_machine_type
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-balanced"
    disk_size_gb    = var.node_disk_size_gb
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    labels = {
      "mlops-platform/pool" = "system"
    }
    resource_labels = local.labels

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }
}

resource "google_container_node_pool" "spot" {
  project            = var.project_id
  name               = "spot"
  location           = local.cluster_location
  cluster            = google_container_cluster.this.name
  node_locations     = local.node_locations
  initial_node_count = 0

  # Scales from zero: nodes exist only while run/step pods are pending or running.
  autoscaling {
    total_min_node_count = 0
    total_max_node_count = var.spot_node_max_count
    location_policy      = "ANY"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.spot_node_machine_type
    spot            = true
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-balanced"
    disk_size_gb    = var.node_disk_size_gb
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    labels = {
      "mlops-platform/pool" = "spot"
    }
    resource_labels = local.labels

    taint {
      key    = "mlops-platform/pool"
      value  = "spot"
      effect = "NO_SCHEDULE"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    ignore_changes = [initial_node_count]
  }
}
