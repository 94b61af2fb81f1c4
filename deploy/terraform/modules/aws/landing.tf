# Landing zone events: S3 sends an object-created notification for every key under landing/ to an
# SQS queue (storage.tf, aws_s3_bucket_notification.data); the landing sensor (Dagster code server,
# IRSA role dagster) drains it instead of listing the bucket (MLOPS_LANDING_QUEUE = the queue URL).
# Messages the sensor fails to handle maxReceiveCount times move to a dead-letter queue; the
# files themselves stay in the bucket, so nothing is lost (deploy/README.md, "Landing zone").

locals {
  landing_queue_name = "${local.prefix}-landing-events"

  # The sensor ticks every 30 s and deletes a message only after the run request for its day is
  # recorded (the next tick): a received message stays hidden long enough for that.
  landing_queue_visibility_seconds = 300
  # A sensor stopped over a long weekend still finds its messages (SQS maximum: 14 days).
  landing_queue_retention_seconds = 7 * 24 * 3600
  # SQS keeps a moved message's original enqueue time: the DLQ must keep messages longer.
  landing_dlq_retention_seconds = 14 * 24 * 3600
  # Receives without a delete before a message moves to the DLQ (10 x 300 s = 50 min of failures).
  landing_queue_max_receive_count = 10
}

resource "aws_sqs_queue" "landing_events_dlq" {
  name                              = "${local.landing_queue_name}-dlq"
  message_retention_seconds         = local.landing_dlq_retention_seconds
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = merge(local.tags, { DataClass = "landing-events" })
}

resource "aws_sqs_queue" "landing_events" {
  name                              = local.landing_queue_name
  visibility_timeout_seconds        = local.landing_queue_visibility_seconds
  message_retention_seconds         = local.landing_queue_retention_seconds
  receive_wait_time_seconds         = 1 # short long-poll; the sensor may pass its own WaitTimeSeconds
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300 # S3 and the sensor call KMS at most once per 5 min per key

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.landing_events_dlq.arn
    maxReceiveCount     = local.landing_queue_max_receive_count
  })

  tags = merge(local.tags, { DataClass = "landing-events" })
}

# Only the landing queue may move messages into the DLQ (and redrive reads them back).
resource "aws_sqs_queue_redrive_allow_policy" "landing_events_dlq" {
  queue_url = aws_sqs_queue.landing_events_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.landing_events.arn]
  })
}

data "aws_iam_policy_document" "landing_events_queue" {
  statement {
    sid       = "S3LandingNotificationsFromThisBucket"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.landing_events.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.data.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.landing_events.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "landing_events" {
  queue_url = aws_sqs_queue.landing_events.id
  policy    = data.aws_iam_policy_document.landing_events_queue.json
}

data "aws_iam_policy_document" "landing_events_dlq" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.landing_events_dlq.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "landing_events_dlq" {
  queue_url = aws_sqs_queue.landing_events_dlq.id
  policy    = data.aws_iam_policy_document.landing_events_dlq.json
}
