output "cluster_name" {
  description = "EKS cluster name."
  value       = module.platform.cluster_name
}

output "storage_root" {
  description = "MLOPS_STORAGE_ROOT."
  value       = module.platform.storage_root
}

output "mlflow_artifact_root" {
  description = "MLOPS_MLFLOW_ARTIFACT_ROOT."
  value       = module.platform.mlflow_artifact_root
}

output "landing_queue_url" {
  description = "MLOPS_LANDING_QUEUE (also LANDING_QUEUE_URL in helm_env)."
  value       = module.platform.landing_queue_url
}

output "landing_dead_letter_queue_arn" {
  description = "Dead-letter queue of the landing events (redrive: deploy/runbooks/disaster-recovery.md)."
  value       = module.platform.landing_dead_letter_queue_arn
}

output "ecr_repository_urls" {
  description = "ECR repositories (user-code, serving)."
  value       = module.platform.ecr_repository_urls
}

output "db_secret_arn" {
  description = "Secrets Manager secret with the Postgres credentials."
  value       = module.platform.db_secret_arn
}

output "cluster_autoscaler_role_arn" {
  description = "IRSA role for the cluster-autoscaler Helm release."
  value       = module.platform.cluster_autoscaler_role_arn
}

output "sagemaker_execution_role_arn" {
  description = "Execution role of SageMaker endpoints."
  value       = module.platform.sagemaker_execution_role_arn
}

output "node_pools" {
  description = "Node pool label and spot taint."
  value       = module.platform.node_pools
}

output "helm_env" {
  description = "Placeholders for deploy/helm (see deploy/README.md)."
  value       = module.platform.helm_env
}
