output "region" {
  description = "Region of the stack."
  value       = local.region
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "EKS API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (IRSA)."
  value       = aws_iam_openid_connect_provider.cluster.arn
}

output "bucket_name" {
  description = "Data bucket (lake, MLflow artifacts, compute logs, landing zone, quarantine)."
  value       = aws_s3_bucket.data.bucket
}

output "replica_bucket_name" {
  description = "Cross-region replica of the data bucket, null when replication is off."
  value       = var.replication_enabled ? aws_s3_bucket.replica[0].bucket : null
}

output "storage_root" {
  description = "MLOPS_STORAGE_ROOT: root URI of the Delta lake."
  value       = "s3://${aws_s3_bucket.data.bucket}/${local.lake_prefix}"
}

output "mlflow_artifact_root" {
  description = "MLOPS_MLFLOW_ARTIFACT_ROOT: MLflow artifact store."
  value       = "s3://${aws_s3_bucket.data.bucket}/${local.mlflow_prefix}"
}

output "compute_logs_prefix" {
  description = "Key prefix of Dagster compute logs in the data bucket."
  value       = local.compute_logs_prefix
}

output "landing_queue_url" {
  description = "MLOPS_LANDING_QUEUE: SQS queue receiving the object-created notifications of landing/."
  value       = aws_sqs_queue.landing_events.url
}

output "landing_dead_letter_queue_arn" {
  description = "Dead-letter queue of the landing-event queue (messages the sensor failed to handle 10 times)."
  value       = aws_sqs_queue.landing_events_dlq.arn
}

output "kms_key_arn" {
  description = "Customer-managed key encrypting the platform's data."
  value       = aws_kms_key.this.arn
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by name (user-code, serving)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "db_host" {
  description = "Postgres host name (private)."
  value       = aws_db_instance.this.address
}

output "db_port" {
  description = "Postgres port."
  value       = aws_db_instance.this.port
}

output "db_username" {
  description = "Postgres admin user, the one Dagster runs as."
  value       = aws_db_instance.this.username
}

output "db_secret_arn" {
  description = "Secrets Manager secret holding the Postgres admin (Dagster) credentials."
  value       = aws_secretsmanager_secret.db.arn
}

output "mlflow_db_username" {
  description = "Postgres user of the MLflow backend (created by the mlflow-database Job)."
  value       = local.mlflow_db_username
}

output "mlflow_db_secret_arn" {
  description = "Secrets Manager secret holding the MLflow Postgres credentials."
  value       = aws_secretsmanager_secret.mlflow_db.arn
}

output "dagster_role_arn" {
  description = "IRSA role of the Dagster service account."
  value       = aws_iam_role.dagster.arn
}

output "mlflow_role_arn" {
  description = "IRSA role of the MLflow service account."
  value       = aws_iam_role.mlflow.arn
}

output "cluster_autoscaler_role_arn" {
  description = "IRSA role of the cluster-autoscaler service account (kube-system/cluster-autoscaler)."
  value       = aws_iam_role.cluster_autoscaler.arn
}

output "sagemaker_execution_role_arn" {
  description = "Execution role SageMaker endpoints run with (reads mlflow/ artifacts, pulls the serving image)."
  value       = aws_iam_role.sagemaker.arn
}

output "sagemaker_resource_prefix" {
  description = "SageMaker models, endpoint configs and endpoints must be named with this prefix."
  value       = "${local.sagemaker_prefix}-"
}

output "node_pools" {
  description = "Node label key/values and the spot taint that the Helm values select and tolerate."
  value = {
    label_key    = "mlops-platform/pool"
    system_value = "system"
    spot_value   = "spot"
    spot_taint   = { key = "mlops-platform/pool", value = "spot", effect = "NoSchedule" }
  }
}

output "helm_env" {
  description = "Values substituted into deploy/helm (envsubst placeholders); see deploy/README.md."
  value = {
    CLOUD_REGION               = local.region
    CLUSTER_NAME               = aws_eks_cluster.this.name
    CLUSTER_AUTOSCALER_ROLE    = aws_iam_role.cluster_autoscaler.arn
    DAGSTER_WORKLOAD_IDENTITY  = aws_iam_role.dagster.arn
    MLFLOW_WORKLOAD_IDENTITY   = aws_iam_role.mlflow.arn
    USER_CODE_IMAGE_REPOSITORY = aws_ecr_repository.this["user-code"].repository_url
    SERVING_IMAGE_REPOSITORY   = aws_ecr_repository.this["serving"].repository_url
    DB_HOST                    = aws_db_instance.this.address
    DB_USERNAME                = aws_db_instance.this.username
    MLFLOW_DB_USERNAME         = local.mlflow_db_username
    BUCKET                     = aws_s3_bucket.data.bucket
    COMPUTE_LOGS_PREFIX        = local.compute_logs_prefix
    MLOPS_STORAGE_ROOT         = "s3://${aws_s3_bucket.data.bucket}/${local.lake_prefix}"
    MLOPS_MLFLOW_ARTIFACT_ROOT = "s3://${aws_s3_bucket.data.bucket}/${local.mlflow_prefix}"
    BACKUP_ROOT                = "s3://${aws_s3_bucket.data.bucket}/${local.backups_prefix}"
    LANDING_QUEUE_URL          = aws_sqs_queue.landing_events.url
    SAGEMAKER_EXECUTION_ROLE   = aws_iam_role.sagemaker.arn
  }
}

output "prefixes" {
  description = "Key prefixes inside the data bucket/container: Delta lake, MLflow artifacts, Dagster compute logs, landing zone, quarantine, registry exports."
  value = {
    lake         = local.lake_prefix
    mlflow       = local.mlflow_prefix
    compute_logs = local.compute_logs_prefix
    landing      = local.landing_prefix
    quarantine   = local.quarantine_prefix
    backups      = local.backups_prefix
  }
}
