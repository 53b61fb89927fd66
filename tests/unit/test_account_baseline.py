"""Account security: GuardDuty, AWS Config (+ PCI DSS rules) and CloudTrail, and the singleton switch."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lib.components.account_baseline import MANAGED_RULES
from lib.config import PRESETS, Environment, EnvironmentConfig
from lib.iam_policies import least_privilege_violations
from tools.evaluate import Evaluation, Registration, default_config, evaluate

COMPONENT_TOKEN = "scalepayments:account:AccountBaseline"
DETECTOR = "aws:guardduty/detector:Detector"
FEATURE = "aws:guardduty/detectorFeature:DetectorFeature"
RECORDER = "aws:cfg/recorder:Recorder"
CHANNEL = "aws:cfg/deliveryChannel:DeliveryChannel"
STATUS = "aws:cfg/recorderStatus:RecorderStatus"
RULE = "aws:cfg/rule:Rule"
TRAIL = "aws:cloudtrail/trail:Trail"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
SINGLETONS = (DETECTOR, FEATURE, RECORDER, CHANNEL, STATUS, TRAIL)

ENCRYPTION_RULES = {
    "RDS_STORAGE_ENCRYPTED",
    "ELASTICACHE_REPL_GRP_ENCRYPTED_AT_REST",
    "ELASTICACHE_REPL_GRP_ENCRYPTED_IN_TRANSIT",
    "CLOUD_TRAIL_ENCRYPTION_ENABLED",
    "CLOUDWATCH_LOG_GROUP_ENCRYPTED",
}


@pytest.fixture(scope="module", params=["staging", "prod"])
def secured(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> tuple[EnvironmentConfig, Evaluation]:
    """Environments whose preset enables account security."""
    env = request.param
    cfg = resolved(env)
    assert cfg.account_security.enabled and cfg.account_security.manage_account_singletons
    return cfg, evaluated(env)


@pytest.fixture(scope="module")
def unmanaged() -> Evaluation:
    """Staging as a second stack in an account whose GuardDuty/Config/CloudTrail belong to someone else."""
    return evaluate("staging", {**default_config("staging"), "scalepayments:manageAccountSingletons": "false"})


def _ours(evaluation: Evaluation, type_: str | None = None) -> list[Registration]:
    return [r for r in evaluation.registrations if COMPONENT_TOKEN in r.urn and (type_ is None or r.type == type_)]


def _one(evaluation: Evaluation, type_: str) -> Registration:
    found = _ours(evaluation, type_)
    assert len(found) == 1, f"expected one {type_} in the account baseline, found {[r.name for r in found]}"
    return found[0]


def _by_logical_name(evaluation: Evaluation, name: str) -> Registration:
    (found,) = [r for r in _ours(evaluation) if r.name == name]
    return found


def _bucket_named(evaluation: Evaluation, component: str) -> Registration:
    account = evaluation.outputs["accountId"]
    (bucket,) = [b for b in _ours(evaluation, BUCKET) if b.inputs["bucket"].startswith(f"scalepay-{component}-")]
    assert bucket.inputs["bucket"].endswith(account), f"{bucket.inputs['bucket']}: not made unique by the account id"
    return bucket


def _settings_of(evaluation: Evaluation, bucket: Registration, type_: str) -> dict[str, Any]:
    (found,) = [r for r in _ours(evaluation, type_) if r.inputs["bucket"] == bucket.state["id"]]
    return found.inputs


def _depends_on(resource: Registration, dependency: Registration) -> bool:
    return dependency.urn in resource.depends_on


@dataclass(frozen=True)
class AuditBucket:
    """One audit bucket (AWS Config's or CloudTrail's) of an environment whose preset enables account security."""

    component: str
    cfg: EnvironmentConfig
    evaluation: Evaluation
    bucket: Registration

    @property
    def name(self) -> str:
        return str(self.bucket.inputs["bucket"])

    def settings(self, type_: str) -> dict[str, Any]:
        """The inputs of the one ``type_`` resource configuring this bucket."""
        return _settings_of(self.evaluation, self.bucket, type_)


@pytest.fixture(params=["config", "cloudtrail"])
def audit(request: pytest.FixtureRequest, secured: tuple[EnvironmentConfig, Evaluation]) -> AuditBucket:
    """Each audit bucket of each secured environment in turn."""
    cfg, evaluation = secured
    component = str(request.param)
    return AuditBucket(component, cfg, evaluation, _bucket_named(evaluation, component))


# --- presence -------------------------------------------------------------------------------------


def test_baseline_only_where_the_environment_enables_it(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    registered = _ours(evaluation)
    if not cfg.account_security.enabled:
        assert registered == [], f"{cfg.env}: account baseline should be absent: {[r.name for r in registered]}"
        for type_ in (*SINGLETONS, RULE):
            assert evaluation.of_type(type_) == [], f"{cfg.env}: unexpected {type_}"
        assert evaluation.outputs["guardDutyDetectorId"] == ""
        assert evaluation.outputs["cloudTrailArn"] == ""
    else:
        for type_ in (DETECTOR, RECORDER, CHANNEL, STATUS, TRAIL):
            _one(evaluation, type_)


# --- GuardDuty ------------------------------------------------------------------------------------


def test_guardduty_detector_with_rds_and_s3_protection(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    _, evaluation = secured
    detector = _one(evaluation, DETECTOR)
    assert detector.inputs["enable"] is True, f"{detector.name} is not enabled"
    assert detector.inputs["findingPublishingFrequency"] == "FIFTEEN_MINUTES", detector.name
    assert detector.inputs["tags"]["Environment"] == evaluation.stack
    features = {f.inputs["name"]: f.inputs for f in _ours(evaluation, FEATURE)}
    assert set(features) >= {"RDS_LOGIN_EVENTS", "S3_DATA_EVENTS"}, f"{detector.name} features: {sorted(features)}"
    for name, inputs in features.items():
        assert inputs["status"] == "ENABLED", f"GuardDuty feature {name} is not enabled"
        assert inputs["detectorId"] == detector.state["id"], f"GuardDuty feature {name} is on another detector"
    assert evaluation.outputs["guardDutyDetectorId"] == detector.state["id"]


# --- AWS Config -------------------------------------------------------------------------------------


def test_config_recorder_records_everything_with_its_role(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = secured
    recorder = _one(evaluation, RECORDER)
    name = recorder.inputs["name"]
    assert name == cfg.namer.name("config-recorder") == evaluation.outputs["configRecorderName"]
    assert recorder.inputs["recordingGroup"] == {"allSupported": True, "includeGlobalResourceTypes": True}, name
    role = _by_logical_name(evaluation, "config-recorder-role")
    assert recorder.inputs["roleArn"] == role.state["arn"], f"{name} does not use the Config role"
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "config.amazonaws.com"}, role.inputs["name"]
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == evaluation.outputs["accountId"]
    attachments = [a.inputs for a in _ours(evaluation, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
    assert {"role": role.state["name"], "policyArn": "arn:aws:iam::aws:policy/service-role/AWS_ConfigRole"} in attachments, (
        f"{role.inputs['name']} lacks AWS_ConfigRole: {attachments}"
    )


def test_config_delivery_channel_and_recorder_status(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    _, evaluation = secured
    recorder = _one(evaluation, RECORDER)
    channel = _one(evaluation, CHANNEL)
    status = _one(evaluation, STATUS)
    bucket = _bucket_named(evaluation, "config")
    assert channel.inputs["s3BucketName"] == bucket.inputs["bucket"], channel.inputs["name"]
    assert channel.inputs["s3KmsKeyArn"] == evaluation.outputs["kmsAuditKeyArn"], f"{channel.inputs['name']}: not the audit key"
    assert _depends_on(channel, recorder), f"{channel.inputs['name']} must wait for the recorder (AWS rejects it otherwise)"
    assert status.inputs == {"name": recorder.inputs["name"], "isEnabled": True}, f"recorder status: {status.inputs}"
    assert _depends_on(status, channel), "recording must start only after the delivery channel exists"


def test_config_rules_cover_the_pci_controls(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = secured
    recorder = _one(evaluation, RECORDER)
    rules = _ours(evaluation, RULE)
    identifiers = {r.inputs["source"]["sourceIdentifier"] for r in rules}
    assert len(rules) >= 10, f"only {len(rules)} Config rules"
    assert len(identifiers) == len(rules), "a managed rule is declared twice"
    assert identifiers >= ENCRYPTION_RULES, f"encryption rules missing: {sorted(ENCRYPTION_RULES - identifiers)}"
    assert {"CLOUD_TRAIL_ENABLED", "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED", "S3_BUCKET_SSL_REQUESTS_ONLY"} <= identifiers
    for rule in rules:
        name = rule.inputs["name"]
        assert rule.inputs["source"]["owner"] == "AWS", f"{name}: not an AWS managed rule"
        assert name.startswith("scalepay-") and name.endswith(f"-{cfg.env}"), f"{name} breaks the naming convention"
        assert rule.inputs["description"].startswith("PCI DSS "), f"{name}: description should cite the PCI DSS requirement"
        assert rule.inputs["tags"]["Component"] == "account-security", f"{name} lacks the standard tags"
        assert _depends_on(rule, recorder), f"{name} must be created after the recorder"


def test_managed_rule_catalogue_is_well_formed() -> None:
    identifiers = [r.identifier for r in MANAGED_RULES]
    assert len(set(identifiers)) == len(identifiers)
    for rule in MANAGED_RULES:
        assert rule.identifier.isupper() and " " not in rule.identifier, rule.identifier
        assert rule.pci_requirement.split(".")[0].isdigit(), f"{rule.identifier}: {rule.pci_requirement}"
        # Config rule names: at most 128 characters once prefixed and suffixed.
        assert len(f"scalepay-{rule.slug}-staging-pr123456") <= 128, rule.slug


# --- buckets ----------------------------------------------------------------------------------------


def test_audit_buckets_are_encrypted_private_versioned_tls_only(audit: AuditBucket) -> None:
    cfg, evaluation, bucket, name, component = audit.cfg, audit.evaluation, audit.bucket, audit.name, audit.component
    assert bucket.protect is cfg.protection.protect, f"{name}: protect should be {cfg.protection.protect}"
    assert bucket.retain_on_delete is cfg.protection.retain_on_delete, f"{name}: retain_on_delete"
    # Prod keeps its audit data through any teardown; unprotected staging copies must tear down (issue #8.10).
    expected_force = {"staging": True, "prod": False}[evaluation.stack]
    assert bucket.inputs.get("forceDestroy") is expected_force, f"{name}: forceDestroy should be {expected_force}"

    encryption = audit.settings(SSE)
    (rule,) = encryption["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": evaluation.outputs["kmsAuditKeyArn"],
    }, f"{name}: not SSE-KMS with the audit key"
    # CloudTrail with an S3 Bucket Key would need kms:Decrypt on the audit key: the trail's bucket has none
    # and the key policy grants CloudTrail no Decrypt (issue #8.5); Config's bucket keeps the cheaper key.
    assert rule["bucketKeyEnabled"] is {"cloudtrail": False, "config": True}[component], name

    block = audit.settings("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, f"{name}: {flag} is off"
    ownership = audit.settings("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced", name
    versioning = audit.settings("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"]["status"] == "Enabled", name

    statements = json.loads(audit.settings("aws:s3/bucketPolicy:BucketPolicy")["policy"])["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in deny), f"{name} accepts plain HTTP"
    service = f"{component}.amazonaws.com"
    writes = [s for s in statements if s["Effect"] == "Allow" and s["Action"] == "s3:PutObject"]
    assert [s["Principal"] for s in writes] == [{"Service": service}], f"{name}: only {service} may write: {writes}"
    prefix = f"arn:aws:s3:::{name}/AWSLogs/{evaluation.outputs['accountId']}/"
    assert writes[0]["Resource"].startswith(prefix), f"{name}: writes not confined to {prefix}"
    assert writes[0]["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control", name


# --- CloudTrail -------------------------------------------------------------------------------------


def test_cloudtrail_multi_region_validated_encrypted_to_cloudwatch(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = secured
    trail = _one(evaluation, TRAIL)
    inputs = trail.inputs
    name = inputs["name"]
    assert name == cfg.namer.name("cloudtrail")
    for flag in ("isMultiRegionTrail", "includeGlobalServiceEvents", "enableLogFileValidation", "enableLogging"):
        assert inputs.get(flag) is True, f"{name}: {flag} is off"
    assert inputs["kmsKeyId"] == evaluation.outputs["kmsAuditKeyArn"], f"{name}: log files not encrypted with the audit key"
    bucket = _bucket_named(evaluation, "cloudtrail")
    assert inputs["s3BucketName"] == bucket.inputs["bucket"], name
    assert trail.protect is cfg.protection.protect and trail.retain_on_delete is cfg.protection.retain_on_delete, name
    bucket_policy = _by_logical_name(evaluation, "cloudtrail-bucket-policy")
    assert _depends_on(trail, bucket_policy), f"{name} must wait for its bucket policy (CloudTrail checks it on create)"
    assert evaluation.outputs["cloudTrailArn"] == trail.state["arn"]

    # The bucket policy pins writes to this very trail.
    expected_arn = f"arn:aws:cloudtrail:{cfg.region}:{evaluation.outputs['accountId']}:trail/{name}"
    for statement in json.loads(bucket_policy.inputs["policy"])["Statement"]:
        if statement["Effect"] == "Allow":
            assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == expected_arn, statement["Sid"]

    # CloudWatch Logs delivery: KMS-encrypted group with the environment's retention, a write-only role.
    log_group = _one(evaluation, "aws:cloudwatch/logGroup:LogGroup")
    assert inputs["cloudWatchLogsGroupArn"] == f"{log_group.state['arn']}:*", name
    assert log_group.inputs["kmsKeyId"] == evaluation.outputs["kmsLogsKeyArn"], f"{log_group.inputs['name']}: not the logs key"
    assert log_group.inputs["retentionInDays"] == cfg.observability.log_retention_days, log_group.inputs["name"]
    if cfg.protection.protect:
        assert log_group.inputs["retentionInDays"] >= 365, "PCI DSS 10.5.1: a year of audit history"
    role = _by_logical_name(evaluation, "cloudtrail-logs-role")
    assert inputs["cloudWatchLogsRoleArn"] == role.state["arn"], name
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"}, role.inputs["name"]
    policy = json.loads(_by_logical_name(evaluation, "cloudtrail-logs-write").inputs["policy"])
    assert least_privilege_violations(policy) == [], role.inputs["name"]
    (write,) = policy["Statement"]
    assert sorted(write["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"], role.inputs["name"]
    assert write["Resource"] == f"{log_group.state['arn']}:*", f"{role.inputs['name']} may write beyond its log group"


def test_config_role_inline_policy_is_least_privilege(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    _, evaluation = secured
    policy = json.loads(_by_logical_name(evaluation, "config-recorder-delivery").inputs["policy"])
    assert least_privilege_violations(policy) == []
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources["EncryptWithAuditKey"] == evaluation.outputs["kmsAuditKeyArn"]


# --- the singleton switch -------------------------------------------------------------------------


def test_unmanaged_singletons_are_read_not_created(unmanaged: Evaluation) -> None:
    for type_ in (*SINGLETONS, BUCKET):
        found = _ours(unmanaged, type_)
        assert found == [], f"manageAccountSingletons=false still registers {type_}: {[r.name for r in found]}"
    assert unmanaged.outputs["guardDutyDetectorId"] == "existing-detector"
    assert unmanaged.outputs["configRecorderName"] == PRESETS[Environment.STAGING].account_security.existing_config_recorder_name
    assert unmanaged.outputs["cloudTrailArn"] == ""


def test_unmanaged_stack_still_evaluates_its_config_rules(unmanaged: Evaluation) -> None:
    rules = _ours(unmanaged, RULE)
    assert len(rules) == len(MANAGED_RULES), "the per-stack rules rely on the account's recorder and stay"
    for rule in rules:
        assert rule.depends_on == (), f"{rule.inputs['name']} depends on a recorder this stack does not own"


# --- audit trail hardening (PCI DSS 10.3, 10.5): object lock, lifecycle, access logging -------------------

#: Log retention per environment (README environment table): the audit buckets lock and keep objects that long.
AUDIT_RETENTION_DAYS = {"staging": 90, "prod": 365}
LOCK_MODE = {"staging": "GOVERNANCE", "prod": "COMPLIANCE"}


def test_audit_buckets_are_object_locked_for_the_log_retention(audit: AuditBucket) -> None:
    env, component = audit.cfg.env, audit.component
    assert audit.bucket.inputs.get("objectLockEnabled") is True, f"{audit.name}: Object Lock must be on at creation"
    lock = audit.settings("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock["rule"]["defaultRetention"] == {"mode": LOCK_MODE[env], "days": AUDIT_RETENTION_DAYS[env]}, component


def test_audit_buckets_archive_then_expire_at_the_retention(audit: AuditBucket) -> None:
    env, component = audit.cfg.env, audit.component
    (rule,) = audit.settings("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"]["days"] == AUDIT_RETENTION_DAYS[env], component
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == AUDIT_RETENTION_DAYS[env], component
    # Three months immediately available (PCI DSS 10.5.1), then Glacier Instant Retrieval where retention is longer.
    expected = [{"days": 90, "storageClass": "GLACIER_IR"}] if AUDIT_RETENTION_DAYS[env] > 90 else None
    assert rule.get("transitions") == expected, component


def test_audit_buckets_log_access_to_a_dedicated_bucket(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    _, evaluation = secured
    account = evaluation.outputs["accountId"]
    access = _by_logical_name(evaluation, "audit-access-logs-bucket")
    access_name = access.inputs["bucket"]
    assert access_name == f"scalepay-audit-access-{evaluation.stack}-{account}"
    (rule,) = _settings_of(evaluation, access, SSE)["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}, "S3 access logs need SSE-S3"
    loggings = {r.name: r.inputs for r in _ours(evaluation, "aws:s3/bucketLogging:BucketLogging")}
    assert sorted(loggings) == ["cloudtrail-access-logging", "config-access-logging"]
    for component in ("config", "cloudtrail"):
        logging = loggings[f"{component}-access-logging"]
        assert logging["bucket"] == _bucket_named(evaluation, component).state["id"], component
        assert (logging["targetBucket"], logging["targetPrefix"]) == (access_name, f"s3-access/{component}/"), component
    policy = json.loads(_settings_of(evaluation, access, "aws:s3/bucketPolicy:BucketPolicy")["policy"])
    (write,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert write["Principal"] == {"Service": "logging.s3.amazonaws.com"} and write["Action"] == "s3:PutObject"
    assert write["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
    assert sorted(write["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(
        f"arn:aws:s3:::scalepay-{c}-{evaluation.stack}-{account}" for c in ("cloudtrail", "config")
    )


def test_cloudtrail_insights_on_the_prod_trail_only(secured: tuple[EnvironmentConfig, Evaluation]) -> None:
    _, evaluation = secured
    trail = _one(evaluation, TRAIL)
    expected = (
        [{"insightType": "ApiCallRateInsight"}, {"insightType": "ApiErrorRateInsight"}] if evaluation.stack == "prod" else None
    )
    assert trail.inputs.get("insightSelectors") == expected


# --- the account model (issue #8.4): dedicated by default, shared with exactly one owner ------------------


def test_a_shared_account_needs_an_explicit_singleton_owner() -> None:
    from lib.config import ConfigError, build

    raw = {**{k.split(":", 1)[1]: v for k, v in default_config("staging").items() if k.startswith("scalepayments:")}}
    with pytest.raises(ConfigError) as excinfo:
        build("staging", {**raw, "accountModel": "shared"})
    assert "scalepayments:manageAccountSingletons" in str(excinfo.value) and "exactly one stack" in str(excinfo.value)
    assert build("staging", {**raw, "accountModel": "shared", "manageAccountSingletons": "false"}).account_security


def test_staging_and_prod_in_one_account_create_each_singleton_once() -> None:
    """Prod owns the account's detector, recorder, trail and RDSOSMetrics; staging beside it creates none of them."""
    owner = evaluate(
        "prod",
        {**default_config("prod"), "scalepayments:accountModel": "shared", "scalepayments:manageAccountSingletons": "true"},
    )
    member = evaluate(
        "staging",
        {**default_config("staging"), "scalepayments:accountModel": "shared", "scalepayments:manageAccountSingletons": "false"},
    )
    account_wide = (DETECTOR, RECORDER, CHANNEL, STATUS, TRAIL)
    for type_ in account_wide:
        assert len(owner.of_type(type_)) == 1, type_
        assert member.of_type(type_) == [], type_
    log_groups = {r.inputs["name"] for r in member.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert "RDSOSMetrics" not in log_groups
    assert "RDSOSMetrics" in {r.inputs["name"] for r in owner.of_type("aws:cloudwatch/logGroup:LogGroup")}

    # Everything else each stack names is its own: no physical name appears in both.
    def names(evaluation: Evaluation) -> set[str]:
        found = {str(r.inputs["name"]) for r in evaluation.custom() if r.inputs.get("name")}
        return found | {str(r.inputs["bucket"]) for r in evaluation.of_type(BUCKET)}

    assert names(owner) & names(member) == set()
