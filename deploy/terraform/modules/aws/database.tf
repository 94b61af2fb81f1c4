# RDS for PostgreSQL: the Dagster instance database ("dagster", created here) and the MLflow backend
# store ("mlflow", created by the MLflow deployment's init container because RDS creates only one
# database). Private subnets only, reachable from the EKS cluster security group only.

resource "random_password" "db" {
  length  = 32
  special = true
  # URL-safe: the password is embedded in the MLflow backend-store URI.
  override_special = "-_"
}

resource "aws_db_subnet_group" "this" {
  name        = "${local.prefix}-postgres"
  description = "Private subnets of ${local.prefix}"
  subnet_ids  = aws_subnet.private[*].id
  tags        = local.tags
}

resource "aws_security_group" "db" {
  name        = "${local.prefix}-postgres"
  description = "Postgres of ${local.prefix}: reachable from EKS pods and nodes only"
  vpc_id      = aws_vpc.this.id
  tags        = merge(local.tags, { Name = "${local.prefix}-postgres" })
}

resource "aws_vpc_security_group_ingress_rule" "db_from_cluster" {
  security_group_id            = aws_security_group.db.id
  description                  = "Postgres from the EKS cluster security group"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  tags                         = local.tags
}

resource "aws_db_parameter_group" "this" {
  name        = "${local.prefix}-postgres${var.db_engine_version}"
  family      = "postgres${var.db_engine_version}"
  description = "TLS-only connections and statement logging for ${local.prefix}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # DDL statements and anything slower than 1 s reach the logs (exported to CloudWatch).
  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.prefix}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_293:Deletion protection is the db_deletion_protection variable: on in prod tfvars (asserted by tests/deploy), off in dev so the stack can be torn down.
  #checkov:skip=CKV_AWS_157:Multi-AZ is the db_multi_az variable: on in prod tfvars, off in dev to halve the database cost (tests/deploy asserts prod keeps it on).
  identifier     = "${local.prefix}-postgres"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = "dagster"
  username = "mlops"
  password = random_password.db.result
  port     = 5432

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  multi_az               = var.db_multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  # Automated backups + transaction logs = point-in-time recovery within the retention window.
  backup_retention_period  = var.db_backup_retention_days
  backup_window            = "02:00-03:00"
  maintenance_window       = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot    = true
  delete_automated_backups = false

  deletion_protection       = var.db_deletion_protection
  skip_final_snapshot       = !var.db_deletion_protection
  final_snapshot_identifier = "${local.prefix}-postgres-final"

  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = 7

  tags = local.tags

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}

# Prod: automated backups (snapshots + transaction logs) also copied to the DR region, so the
# database can be restored to a point in time there after a regional outage.
resource "aws_db_instance_automated_backups_replication" "dr" {
  count    = var.replication_enabled ? 1 : 0
  provider = aws.replica

  source_db_instance_arn = aws_db_instance.this.arn
  kms_key_id             = aws_kms_key.replica[0].arn
  retention_period       = var.db_backup_retention_days
}

# The password also lives in Secrets Manager: the Helm install step reads it from there into the
# Kubernetes secret that the Dagster chart (global.postgresqlSecretName) uses. This is the admin
# (master) user; MLflow has its own user and secret below.
resource "aws_secretsmanager_secret" "db" {
  #checkov:skip=CKV2_AWS_57:Rotation must roll the Kubernetes secret and restart Dagster and MLflow together; it is a runbook step (deploy/README.md), not a Lambda.
  name                    = "${local.prefix}/postgres"
  description             = "Postgres admin credentials of ${local.prefix} (Dagster instance)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "db" {
  secret_id = aws_secretsmanager_secret.db.id
  secret_string = jsonencode({
    username = aws_db_instance.this.username
    password = random_password.db.result
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    dbname   = aws_db_instance.this.db_name
  })
}

# MLflow's own Postgres user: RDS has no API for roles, so the Job deploy/helm/mlflow/mlflow-database.yaml
# creates the role (and the "mlflow" database it owns) with this password; the MLflow pods read
# it from their own Kubernetes secret (mlflow-postgresql-secret), never Dagster's.
resource "random_password" "mlflow_db" {
  length           = 32
  special          = true
  override_special = "-_" # URL-safe: the password is embedded in the MLflow backend-store URI
}

resource "aws_secretsmanager_secret" "mlflow_db" {
  #checkov:skip=CKV2_AWS_57:Rotation must roll the Kubernetes secret, rerun the mlflow-database Job and restart MLflow together; it is a runbook step (deploy/README.md), not a Lambda.
  name                    = "${local.prefix}/postgres-mlflow"
  description             = "Postgres credentials of the MLflow backend of ${local.prefix} (role ${local.mlflow_db_username})"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "mlflow_db" {
  secret_id = aws_secretsmanager_secret.mlflow_db.id
  secret_string = jsonencode({
    username = local.mlflow_db_username
    password = random_password.mlflow_db.result
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    dbname   = "mlflow"
  })
}
