# Workload identities (IRSA): each Kubernetes service account assumes exactly one role through the
# cluster's OIDC provider. No access keys exist anywhere. Permissions are scoped to this stack's
# bucket prefixes, key, repositories, name-prefixed SageMaker resources and the platform's CloudWatch namespace.

locals {
  sagemaker_prefix = local.prefix
  # NAMESPACE in mlops_platform/profiles/metrics.py: the CloudWatch namespace the platform writes to.
  metrics_namespace = "mlops-platform"

  irsa_subjects = {
    dagster            = "system:serviceaccount:${var.k8s_namespace}:${var.dagster_service_account}"
    mlflow             = "system:serviceaccount:${var.k8s_namespace}:${var.mlflow_service_account}"
    cluster_autoscaler = "system:serviceaccount:kube-system:cluster-autoscaler"
  }
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_subjects

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.cluster.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:sub"
      values   = [each.value]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# --- Dagster: lake, artifacts, compute logs, landing zone and its queue, SageMaker, metrics ---

resource "aws_iam_role" "dagster" {
  name               = "${local.prefix}-dagster"
  description        = "Dagster webserver, daemon, code server, run and step pods"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["dagster"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "dagster" {
  statement {
    sid       = "ListPlatformPrefixes"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.data.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        "",
        "${local.lake_prefix}/*",
        "${local.mlflow_prefix}/*",
        "${local.compute_logs_prefix}/*",
        "${local.landing_prefix}/*",
        "${local.quarantine_prefix}/*",
        "${local.backups_prefix}/*",
      ]
    }
  }

  statement {
    sid = "ReadWritePlatformObjects"
    actions = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [
      "${aws_s3_bucket.data.arn}/${local.lake_prefix}/*",
      "${aws_s3_bucket.data.arn}/${local.mlflow_prefix}/*",
      "${aws_s3_bucket.data.arn}/${local.compute_logs_prefix}/*",
      "${aws_s3_bucket.data.arn}/${local.backups_prefix}/*",
    ]
  }

  # The landing sensor and ingest runs read landed files, quarantine a bad one (copy to
  # quarantine/, write its reason object, delete the original) and tests/simulate land files.
  statement {
    sid     = "LandingZoneObjects"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [
      "${aws_s3_bucket.data.arn}/${local.landing_prefix}/*",
      "${aws_s3_bucket.data.arn}/${local.quarantine_prefix}/*",
    ]
  }

  # Object-created notifications of landing/ (landing.tf): receive, hide while the run request is
  # recorded, delete; read the queue's attributes. Nothing else on SQS, on this queue only.
  statement {
    sid = "DrainLandingEventQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.landing_events.arn]
  }

  # Objects are SSE-KMS; kms:Decrypt also reads the SSE-KMS landing-event messages.
  statement {
    sid       = "UsePlatformKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid = "ManagePlatformEndpoints"
    actions = [
      "sagemaker:CreateModel",
      "sagemaker:DescribeModel",
      "sagemaker:DeleteModel",
      "sagemaker:CreateEndpointConfig",
      "sagemaker:DescribeEndpointConfig",
      "sagemaker:DeleteEndpointConfig",
      "sagemaker:CreateEndpoint",
      "sagemaker:UpdateEndpoint",
      "sagemaker:DescribeEndpoint",
      "sagemaker:DeleteEndpoint",
      "sagemaker:InvokeEndpoint",
      "sagemaker:AddTags",
      "sagemaker:ListTags",
    ]
    resources = [
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:model/${local.sagemaker_prefix}-*",
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:endpoint-config/${local.sagemaker_prefix}-*",
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:endpoint/${local.sagemaker_prefix}-*",
    ]
  }

  # Drift, performance and retrain figures (mlops_platform/profiles/metrics.py, CloudWatchSink).
  # PutMetricData has no resource type (IAM accepts only "*" for it); the namespace condition is
  # the only narrowing IAM offers, and confines the role to the platform's own namespace.
  statement {
    sid       = "PutPlatformMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metrics_namespace]
    }
  }

  statement {
    sid       = "PassEndpointRoleToSageMakerOnly"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.sagemaker.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dagster" {
  name   = "platform-data-and-endpoints"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster.json
}

# --- MLflow tracking server: artifact prefix only -----------------------------------------------

resource "aws_iam_role" "mlflow" {
  name               = "${local.prefix}-mlflow"
  description        = "MLflow tracking server"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["mlflow"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "mlflow" {
  statement {
    sid       = "ListArtifactPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.mlflow_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadWriteArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.mlflow_prefix}/*"]
  }

  statement {
    sid       = "UsePlatformKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "mlflow" {
  name   = "mlflow-artifacts"
  role   = aws_iam_role.mlflow.id
  policy = data.aws_iam_policy_document.mlflow.json
}

# --- Cluster autoscaler: scales only this cluster's node groups ---------------------------------

resource "aws_iam_role" "cluster_autoscaler" {
  name               = "${local.prefix}-cluster-autoscaler"
  description        = "Kubernetes cluster-autoscaler of ${local.cluster_name}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["cluster_autoscaler"].json
  tags               = local.tags
}

data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    sid = "DiscoverNodeGroups"
    # Describe/list calls do not support resource-level permissions.
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "DescribeOwnNodeGroups"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["arn:${local.partition}:eks:${local.region}:${local.account_id}:nodegroup/${local.cluster_name}/*/*"]
  }

  statement {
    sid = "ScaleOwnNodeGroups"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    resources = ["arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/eks-*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/eks:cluster-name"
      values   = [local.cluster_name]
    }
  }
}

resource "aws_iam_role_policy" "cluster_autoscaler" {
  name   = "scale-own-node-groups"
  role   = aws_iam_role.cluster_autoscaler.id
  policy = data.aws_iam_policy_document.cluster_autoscaler.json
}

# --- SageMaker execution role: what a model endpoint needs to pull the model ---------------------

data "aws_iam_policy_document" "sagemaker_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "sagemaker" {
  name               = "${local.prefix}-sagemaker-endpoint"
  description        = "SageMaker endpoints of ${local.prefix}: read model artifacts, pull the serving image"
  assume_role_policy = data.aws_iam_policy_document.sagemaker_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "sagemaker" {
  statement {
    sid       = "ListModelArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.mlflow_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadModelArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.mlflow_prefix}/*"]
  }

  statement {
    sid       = "DecryptModelArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "PullServingImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.this["serving"].arn]
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EndpointLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/${local.sagemaker_prefix}-*",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/${local.sagemaker_prefix}-*:log-stream:*",
    ]
  }

  statement {
    sid       = "EndpointMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker" {
  name   = "serve-models"
  role   = aws_iam_role.sagemaker.id
  policy = data.aws_iam_policy_document.sagemaker.json
}
