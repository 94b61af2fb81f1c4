"""The landing zone on the bucket and its event notifications in deploy/ (issue 9, part 5).

Read from the Terraform and Helm files themselves (python-hcl2, PyYAML), no cloud: who may send to
the landing-event queue, what Dagster may do with it and with landing/ and quarantine/, what the
Azure subscription delivers, that GCP creates no Pub/Sub resources, and that the Helm ConfigMaps
carry the queue the Terraform creates. The IAM policies are evaluated with a small evaluator of
IAM's rules (explicit deny wins, else any matching allow; wildcard actions and resources;
ArnEquals/StringEquals/StringLike/Bool conditions, a missing key failing its condition) over the
policy documents as written, with Terraform references such as ${aws_s3_bucket.data.arn} kept
as opaque tokens.
"""

from __future__ import annotations

import ast
import fnmatch
import operator
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"

SENSOR_INTERVAL_SECONDS = 30  # minimum_interval_seconds of the landing sensors
WEEKEND_SECONDS = 3 * 24 * 3600  # Friday evening to Monday morning, with margin
BUCKET = "${aws_s3_bucket.data.arn}"
ACCOUNT = "${data.aws_caller_identity.current.account_id}"  # local.account_id, resolved
QUEUE = "${aws_sqs_queue.landing_events.arn}"
DAGSTER_SQS_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
}

# --- resolving module values ---------------------------------------------------------------------

_BINOPS = {ast.Mult: operator.mul, ast.Add: operator.add, ast.Sub: operator.sub}


def _arith(node: ast.AST) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_arith(node.left), _arith(node.right))
    raise ValueError(f"not an integer expression: {ast.dump(node)}")


def resolve(module: dict[str, Any], value: Any) -> Any:
    """A local's or attribute's value: `${local.x}` and string interpolation of plain locals,
    integer arithmetic such as `${7 * 24 * 3600}`; other references stay as they are."""
    locals_ = module.get("locals", {})
    if isinstance(value, str):
        whole = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        if whole and whole.group(1) in locals_:
            return resolve(module, locals_[whole.group(1)])
        arithmetic = re.fullmatch(r"\$\{([\d\s*+-]+)\}", value)
        if arithmetic:
            return _arith(ast.parse(arithmetic.group(1).strip(), mode="eval").body)

        def plain(match: re.Match[str]) -> str:
            name = match.group(1)
            local = locals_.get(name)
            if isinstance(local, str) and "${" not in local:
                return local
            return match.group(0)

        return re.sub(r"\$\{local\.(\w+)\}", plain, value)
    return value


def jsonencoded(expression: str) -> Any:
    """The value inside `${jsonencode(...)}` as python-hcl2 renders it (a Python literal)."""
    match = re.fullmatch(r"\$\{jsonencode\((.*)\)\}", expression, re.S)
    assert match, f"not a jsonencode() expression: {expression[:80]}"
    return ast.literal_eval(match.group(1))


# --- a small IAM evaluator -----------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(statement: dict[str, Any], principal: tuple[str, str]) -> bool:
    if "principals" not in statement:
        return True  # identity policy: the principal is the role it is attached to
    kind, name = principal
    for block in statement["principals"]:
        if block["type"] == "*" and "*" in block["identifiers"]:
            return True
        if block["type"] == kind and name in block["identifiers"]:
            return True
    return False


def _conditions_hold(statement: dict[str, Any], context: dict[str, str]) -> bool:
    for cond in statement.get("condition", []):
        actual = context.get(cond["variable"])
        if actual is None:
            return False
        test, values = cond["test"], [str(v) for v in cond["values"]]
        if test in ("ArnEquals", "StringEquals", "Bool"):
            ok = actual in values
        elif test in ("ArnLike", "StringLike"):
            ok = any(fnmatch.fnmatchcase(actual, v) for v in values)
        else:
            raise AssertionError(f"condition test {test} not understood by this evaluator")
        if not ok:
            return False
    return True


def _matches(statement: dict[str, Any], principal, action: str, resource: str, context) -> bool:
    return (
        _principal_matches(statement, principal)
        and any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in statement.get("actions", []))
        and any(fnmatch.fnmatchcase(resource, r) for r in statement.get("resources", []))
        and _conditions_hold(statement, context)
    )


def allowed(document: list[dict[str, Any]], principal, action: str, resource: str, context=None) -> bool:
    context = context or {}
    statements = [s for s in document if _matches(s, principal, action, resource, context)]
    if any(s.get("effect", "Allow") == "Deny" for s in statements):
        return False
    return any(s.get("effect", "Allow") == "Allow" for s in statements)


def statements(module: dict[str, Any], name: str) -> list[dict[str, Any]]:
    doc = module["data"]["aws_iam_policy_document"][name]
    return [{k: resolve(module, v) if isinstance(v, str) else v for k, v in s.items()} for s in doc["statement"]]


def _resolved_statements(module: dict[str, Any], name: str) -> list[dict[str, Any]]:
    out = []
    for s in statements(module, name):
        s = dict(s)
        s["resources"] = [resolve(module, r) for r in s.get("resources", [])]
        s["condition"] = [{**c, "values": [resolve(module, v) for v in c["values"]]} for c in s.get("condition", [])]
        out.append(s)
    return out


# --- AWS -----------------------------------------------------------------------------------------

S3 = ("Service", "s3.amazonaws.com")
TLS = {"aws:SecureTransport": "true"}
FROM_BUCKET = {"aws:SourceArn": BUCKET, "aws:SourceAccount": ACCOUNT, **TLS}


@pytest.fixture(scope="module")
def aws(terraform) -> dict[str, Any]:
    return terraform.module("aws")


def test_queue_policy_admits_only_s3_sending_for_this_bucket_and_account(aws) -> None:
    policy = aws["resource"]["aws_sqs_queue_policy"]["landing_events"]
    assert policy["queue_url"] == "${aws_sqs_queue.landing_events.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.landing_events_queue.json}"
    doc = _resolved_statements(aws, "landing_events_queue")

    assert allowed(doc, S3, "sqs:SendMessage", QUEUE, FROM_BUCKET)
    refused = {
        "another bucket": {**FROM_BUCKET, "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket"},
        "another account": {**FROM_BUCKET, "aws:SourceAccount": "999999999999"},
        "no source bucket": {k: v for k, v in FROM_BUCKET.items() if k != "aws:SourceArn"},
        "plain HTTP": {**FROM_BUCKET, "aws:SecureTransport": "false"},
    }
    for why, context in refused.items():
        assert not allowed(doc, S3, "sqs:SendMessage", QUEUE, context), f"S3 may send from {why}"
    for other in (("AWS", "*"), ("AWS", f"arn:aws:iam::{ACCOUNT}:root"), ("Service", "sns.amazonaws.com")):
        assert not allowed(doc, other, "sqs:SendMessage", QUEUE, FROM_BUCKET), f"{other} may send"
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SetQueueAttributes", "sqs:PurgeQueue"):
        assert not allowed(doc, S3, action, QUEUE, FROM_BUCKET), f"S3 may {action}"
    # TLS only, for everyone (the Dagster role too)
    assert not allowed(
        [*doc, {"actions": ["sqs:ReceiveMessage"], "resources": [QUEUE]}],
        ("AWS", "${aws_iam_role.dagster.arn}"),
        "sqs:ReceiveMessage",
        QUEUE,
        {"aws:SecureTransport": "false"},
    )


def test_queue_policy_check_catches_a_policy_without_source_conditions(aws) -> None:
    """The check above can fail: without the source conditions any bucket's notifications get in."""
    loose = [
        {**s, "condition": []} if s.get("effect", "Allow") == "Allow" else s
        for s in _resolved_statements(aws, "landing_events_queue")
    ]
    assert allowed(loose, S3, "sqs:SendMessage", QUEUE, {**FROM_BUCKET, "aws:SourceArn": "arn:aws:s3:::other"})


def test_key_policy_lets_s3_encrypt_landing_events_under_the_same_conditions(aws) -> None:
    assert aws["resource"]["aws_sqs_queue"]["landing_events"]["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    policy = jsonencoded(aws["resource"]["aws_kms_key"]["this"]["policy"])
    for_s3 = [s for s in policy["Statement"] if s.get("Principal") == {"Service": "s3.amazonaws.com"}]
    assert len(for_s3) == 1, for_s3
    statement = for_s3[0]
    assert statement["Effect"] == "Allow"
    assert set(_as_list(statement["Action"])) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": BUCKET},
        "StringEquals": {"aws:SourceAccount": "${local.account_id}"},
    }


def test_bucket_notification_sends_landing_object_created_events_to_the_queue(aws) -> None:
    notifications = aws["resource"]["aws_s3_bucket_notification"]
    # a bucket has one notification configuration: a second resource would overwrite the first
    assert [n for n in notifications.values() if n["bucket"] == "${aws_s3_bucket.data.id}"] == [notifications["data"]]
    notification = notifications["data"]
    assert notification["eventbridge"] is True
    (queue,) = notification["queue"]
    assert queue["queue_arn"] == QUEUE
    assert queue["events"] == ["s3:ObjectCreated:*"]
    assert resolve(aws, queue["filter_prefix"]) == "landing/"
    assert "filter_suffix" not in queue  # in-progress names are skipped by the sensor, not here
    assert "${aws_sqs_queue_policy.landing_events}" in notification["depends_on"]


def test_queue_outlives_a_stopped_sensor_and_hides_messages_longer_than_a_tick(aws) -> None:
    queues = aws["resource"]["aws_sqs_queue"]
    queue, dlq = queues["landing_events"], queues["landing_events_dlq"]
    assert resolve(aws, queue["visibility_timeout_seconds"]) > 2 * SENSOR_INTERVAL_SECONDS
    retention = resolve(aws, queue["message_retention_seconds"])
    assert WEEKEND_SECONDS <= retention <= 14 * 24 * 3600
    redrive = jsonencoded(queue["redrive_policy"])
    assert redrive["deadLetterTargetArn"] == "${aws_sqs_queue.landing_events_dlq.arn}"
    assert int(resolve(aws, redrive["maxReceiveCount"])) >= 3
    # a moved message keeps its enqueue time: the DLQ must keep it longer than the queue did
    assert resolve(aws, dlq["message_retention_seconds"]) > retention
    assert dlq["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    allow = aws["resource"]["aws_sqs_queue_redrive_allow_policy"]["landing_events_dlq"]
    assert jsonencoded(allow["redrive_allow_policy"]) == {"redrivePermission": "byQueue", "sourceQueueArns": [QUEUE]}
    dlq_policy = _resolved_statements(aws, "landing_events_dlq")
    assert not allowed(dlq_policy, ("AWS", "*"), "sqs:ReceiveMessage", "${aws_sqs_queue.landing_events_dlq.arn}", {})


def _role_documents(aws: dict[str, Any], role: str) -> list[str]:
    """Names of the policy documents attached to an IAM role (inline policies)."""
    names = []
    for body in aws["resource"].get("aws_iam_role_policy", {}).values():
        if body["role"] == f"${{aws_iam_role.{role}.id}}":
            names.append(re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", body["policy"]).group(1))
    assert not [
        a for a in aws["resource"].get("aws_iam_role_policy_attachment", {}).values() if role in str(a["role"])
    ], f"managed policies attached to {role}"
    return names


def test_dagster_sqs_permissions_are_exactly_four_actions_on_one_queue(aws) -> None:
    documents = _role_documents(aws, "dagster")
    assert documents == ["dagster"]
    sqs = [s for s in statements(aws, "dagster") if any(a.lower().startswith("sqs:") for a in s["actions"])]
    assert len(sqs) == 1, sqs
    assert set(sqs[0]["actions"]) == DAGSTER_SQS_ACTIONS
    assert sqs[0]["resources"] == [QUEUE]
    assert not sqs[0].get("condition")
    # and no other role may drain or feed it
    for name, body in aws["data"]["aws_iam_policy_document"].items():
        if name in ("dagster", "landing_events_queue", "landing_events_dlq"):
            continue
        for statement in body["statement"]:
            assert not any(a.lower().startswith("sqs:") for a in statement.get("actions", [])), name


def test_dagster_reads_writes_and_deletes_landing_and_quarantine_objects_only_as_needed(aws) -> None:
    doc = _resolved_statements(aws, "dagster")
    role = ("AWS", "${aws_iam_role.dagster.arn}")
    key = "landing/churn/2026-11-02/events-1.csv"
    for prefix in ("landing", "quarantine"):
        obj = f"{BUCKET}/{prefix}/churn/2026-11-02/events-1.csv"
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert allowed(doc, role, action, obj), f"{action} on {prefix}/"
        assert allowed(doc, role, "s3:ListBucket", BUCKET, {"s3:prefix": f"{prefix}/churn/"})
        # least privilege: no version reads or ACL changes of landed files
        for action in ("s3:GetObjectVersion", "s3:PutObjectAcl", "s3:DeleteObjectVersion"):
            assert not allowed(doc, role, action, obj), f"{action} on {prefix}/"
    assert not allowed(doc, role, "s3:GetObject", f"{BUCKET}/elsewhere/{key}")
    assert not allowed(doc, role, "s3:ListBucket", BUCKET, {"s3:prefix": "elsewhere/"})
    assert allowed(doc, role, "kms:Decrypt", "${aws_kms_key.this.arn}")  # SSE-KMS messages and objects


def test_landing_queue_url_is_the_helm_placeholder_and_an_output(aws) -> None:
    outputs = aws["output"]
    assert outputs["landing_queue_url"]["value"] == "${aws_sqs_queue.landing_events.url}"
    assert outputs["helm_env"]["value"]["LANDING_QUEUE_URL"] == outputs["landing_queue_url"]["value"]
    assert outputs["prefixes"]["value"]["landing"] == "${local.landing_prefix}"
    assert resolve(aws, "${local.quarantine_prefix}") == "quarantine"


# --- Azure ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def azure(terraform) -> dict[str, Any]:
    return terraform.module("azure")


def test_azure_subscription_delivers_only_blob_created_under_landing_to_the_queue(azure) -> None:
    resources = azure["resource"]
    topic = resources["azurerm_eventgrid_system_topic"]["data"]
    assert topic["source_resource_id"] == "${azurerm_storage_account.data.id}"
    assert topic["topic_type"] == "Microsoft.Storage.StorageAccounts"
    assert topic["identity"] == [{"type": "SystemAssigned"}]

    (subscription,) = resources["azurerm_eventgrid_system_topic_event_subscription"].values()
    assert subscription["system_topic"] == "${azurerm_eventgrid_system_topic.data.name}"
    assert subscription["included_event_types"] == ["Microsoft.Storage.BlobCreated"]
    (subject,) = subscription["subject_filter"]
    assert resolve(azure, subject["subject_begins_with"]) == "/blobServices/default/containers/mlops/blobs/landing/"
    assert resolve(azure, "${local.container_name}") == resolve(
        azure, resources["azurerm_storage_container"]["data"]["name"]
    )
    assert subject["case_sensitive"] is True
    assert "subject_ends_with" not in subject and "advanced_filter" not in subscription
    (endpoint,) = subscription["storage_queue_endpoint"]
    assert endpoint["storage_account_id"] == "${azurerm_storage_account.data.id}"
    assert endpoint["queue_name"] == "${azurerm_storage_queue.landing_events.name}"
    ttl = resolve(azure, endpoint["queue_message_time_to_live_in_seconds"])
    assert ttl == -1 or ttl >= WEEKEND_SECONDS
    # no public network access: only the system topic's own identity passes the trusted-services exception
    assert subscription["delivery_identity"] == [{"type": "SystemAssigned"}]
    account = resources["azurerm_storage_account"]["data"]
    assert account["public_network_access_enabled"] is False
    assert "AzureServices" in account["network_rules"][0]["bypass"]
    queue = resources["azurerm_storage_queue"]["landing_events"]
    assert queue["storage_account_id"] == "${azurerm_storage_account.data.id}"


def _queue_role_assignments(azure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for name, body in azure["resource"]["azurerm_role_assignment"].items()
        if "Queue" in body["role_definition_name"]
    }


def test_azure_queue_roles_event_grid_sends_dagster_processes_nothing_more(azure) -> None:
    queue_id = "${azurerm_storage_queue.landing_events.id}"
    topic_principal = "${azurerm_eventgrid_system_topic.data.identity[0].principal_id}"
    roles = {
        (body["principal_id"], body["role_definition_name"], body["scope"])
        for body in _queue_role_assignments(azure).values()
    }
    assert roles == {
        (topic_principal, "Storage Queue Data Message Sender", queue_id),
        (
            '${azurerm_user_assigned_identity.workload["dagster"].principal_id}',
            "Storage Queue Data Message Processor",
            queue_id,
        ),
    }
    subscription = azure["resource"]["azurerm_eventgrid_system_topic_event_subscription"]["landing"]
    assert "${azurerm_role_assignment.landing_events_sender}" in subscription["depends_on"]
    # the system topic's identity holds nothing else
    held = [b for b in azure["resource"]["azurerm_role_assignment"].values() if b["principal_id"] == topic_principal]
    assert len(held) == 1


def test_azure_pods_reach_the_queue_through_a_private_endpoint(azure) -> None:
    endpoints = azure["resource"]["azurerm_private_endpoint"]
    queue = [
        e
        for e in endpoints.values()
        if e["private_service_connection"][0]["subresource_names"] == ["queue"]
        and e["private_service_connection"][0]["private_connection_resource_id"] == "${azurerm_storage_account.data.id}"
    ]
    assert len(queue) == 1
    zones = azure["locals"]["private_dns_zones"]
    assert zones["queue"] == "privatelink.queue.core.windows.net"
    zone_ids = queue[0]["private_dns_zone_group"][0]["private_dns_zone_ids"]
    assert zone_ids == ['${azurerm_private_dns_zone.this["queue"].id}']


def test_azure_landing_queue_url_is_the_helm_placeholder_and_an_output(azure) -> None:
    outputs = azure["output"]
    assert outputs["landing_queue_url"]["value"] == "${azurerm_storage_queue.landing_events.url}"
    assert outputs["helm_env"]["value"]["LANDING_QUEUE_URL"] == outputs["landing_queue_url"]["value"]


# --- GCP -----------------------------------------------------------------------------------------


def test_gcp_creates_no_pubsub_and_dagster_may_read_create_delete_landed_objects(terraform) -> None:
    gcp = terraform.module("gcp")
    created = set(gcp["resource"]) | set(gcp.get("data", {}))
    assert not [t for t in created if t.startswith("google_pubsub") or t == "google_storage_notification"]
    assert "LANDING_QUEUE_URL" not in gcp["output"]["helm_env"]["value"]
    bindings = [
        b
        for b in gcp["resource"]["google_storage_bucket_iam_member"].values()
        if b["member"] == "serviceAccount:${google_service_account.dagster.email}"
        and b["bucket"] == "${google_storage_bucket.data.name}"
    ]
    object_user = [b for b in bindings if b["role"] == "roles/storage.objectUser"]  # get, create, delete, list
    assert len(object_user) == 1
    condition = object_user[0].get("condition")
    if condition:  # scoped by prefix: landing/ and quarantine/ must be inside the scope
        for prefix in ("landing", "quarantine"):
            assert f"/objects/{prefix}/" in resolve(gcp, condition[0]["expression"]), prefix
    assert any(b["role"] == "roles/storage.legacyBucketReader" for b in bindings)  # buckets.get + list


# --- Helm ----------------------------------------------------------------------------------------


def _configmap(cloud: str) -> dict[str, str]:
    return yaml.safe_load((HELM / "platform" / f"platform-env-{cloud}.yaml").read_text())["data"]


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_helm_landing_queue_setting_matches_the_terraform_output(terraform, render, tmp_path, cloud: str) -> None:
    data = _configmap(cloud)
    helm_env = terraform.module(cloud)["output"]["helm_env"]["value"]
    # the defaults (landing/ and quarantine/ beside the lake) are right on every cloud
    assert "MLOPS_LANDING_ROOT" not in data and "MLOPS_QUARANTINE_ROOT" not in data
    if cloud == "gcp":
        assert "MLOPS_LANDING_QUEUE" not in data  # listing mode
        return
    assert data["MLOPS_LANDING_QUEUE"] == "${LANDING_QUEUE_URL}"
    assert "LANDING_QUEUE_URL" in helm_env
    for env in ("dev", "prod"):
        output = terraform.env(cloud, env)["output"]["landing_queue_url"]
        assert output["value"] == "${module.platform.landing_queue_url}"
    values = {key: f"test-{key.lower()}" for key in helm_env} | {
        "IMAGE_TAG": "1",
        "LANDING_QUEUE_URL": "https://example.invalid/landing-events",
    }
    rendered = render.render(cloud, values, tmp_path)
    configmap = next(p for p in rendered if p.name == f"platform-env-{cloud}.yaml")
    assert (
        yaml.safe_load(configmap.read_text())["data"]["MLOPS_LANDING_QUEUE"] == "https://example.invalid/landing-events"
    )


# volume sources whose files outlive a pod or are seen by several pods; the Secrets Store CSI
# driver (Key Vault secrets) is not one of them
SHAREABLE_VOLUMES = {"persistentVolumeClaim", "hostPath", "nfs", "azureFile", "cephfs", "glusterfs", "iscsi"}
SECRETS_CSI_DRIVER = "secrets-store.csi.k8s.io"


def _volumes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [v for v in node.get("volumes") or [] if isinstance(v, dict)]
        return found + [v for value in node.values() for v in _volumes(value)]
    if isinstance(node, list):
        return [v for value in node for v in _volumes(value)]
    return []


def test_no_volume_is_shared_between_the_sensor_and_the_runs() -> None:
    docs = [d for p in sorted(HELM.rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert not [d for d in docs if d.get("kind") in ("PersistentVolumeClaim", "PersistentVolume")]
    volumes = _volumes(docs)
    shared = [
        v
        for v in volumes
        if SHAREABLE_VOLUMES & set(v) or ("csi" in v and v["csi"].get("driver") != SECRETS_CSI_DRIVER)
    ]
    assert not shared, f"volumes that could carry a landing zone: {shared}"
    assert volumes, "the walk found no volume at all (MLflow's /tmp emptyDir is expected)"
