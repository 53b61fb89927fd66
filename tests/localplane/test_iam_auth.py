"""IAM auth token verification (SigV4 presigned URLs) against botocore's own signer, and IAM policy evaluation."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from urllib.parse import parse_qsl

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lp_support import ACCOUNT_ID, CLUSTER_RESOURCE_ID, DB_HOST, REGION, REPLICATION_GROUP_ID, AwsFixture, policy_document

from tools.localplane.iam_auth import (
    CredentialRegistry,
    PolicyChecker,
    TokenError,
    evaluate,
    generate_elasticache_token,
    rds_dbuser_arn,
    role_name_from_arn,
    verify_elasticache_token,
    verify_rds_token,
)


def _signed_at(token: str) -> dt.datetime:
    query = dict(parse_qsl(token.split("?", 1)[1]))
    return dt.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def _verify_rds(token: str, aws: AwsFixture, **overrides: object) -> object:
    kwargs: dict[str, object] = {
        "expected_host": DB_HOST,
        "expected_port": 5432,
        "db_user": "app_user",
        "region": REGION,
        "registry": aws.registry,
    }
    kwargs.update(overrides)
    return verify_rds_token(token, **kwargs)  # type: ignore[arg-type]


def test_botocore_rds_token_verifies_to_the_role(aws: AwsFixture) -> None:
    creds = aws.assume(aws.allowed_role_arn)
    token = aws.rds_client(creds).generate_db_auth_token(DB_HOST, 5432, "app_user", REGION)
    assert token.startswith(f"{DB_HOST}:5432/?Action=connect&DBUser=app_user&X-Amz-Algorithm=AWS4-HMAC-SHA256")
    principal = _verify_rds(token, aws)
    assert principal.role_arn == aws.allowed_role_arn  # type: ignore[attr-defined]
    assert principal.account_id == ACCOUNT_ID  # type: ignore[attr-defined]
    assert principal.access_key_id == creds.access_key  # type: ignore[attr-defined]
    # 127.0.0.1 with a non-default port, as a service connecting to the local front would sign it.
    local = aws.rds_client(creds).generate_db_auth_token("127.0.0.1", 40123, "app_user", REGION)
    assert _verify_rds(local, aws, expected_host="127.0.0.1", expected_port=40123).user == "app_user"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mutate", "overrides", "reason"),
    [
        (lambda t: t.replace("DBUser=app_user", "DBUser=admin"), {"db_user": "admin"}, "signature does not match"),
        (lambda t: t, {"db_user": "other_user"}, "DBUser does not match"),
        (lambda t: t, {"expected_port": 5433}, "not payments"),
        (lambda t: t, {"expected_host": "other.cluster.rds.amazonaws.com"}, "not other"),
        (lambda t: t, {"region": "eu-west-1"}, "signed for region"),
        (lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), {}, "signature does not match"),
        (lambda t: t.replace("X-Amz-Expires=900", "X-Amz-Expires=3600"), {}, "X-Amz-Expires"),
        (lambda t: t.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x"), {}, "session token"),
        (lambda t: t.replace("Action=connect", "Action=connect&Extra=1"), {}, "unexpected query parameters"),
        (lambda t: "https://" + t, {}, "without scheme"),
    ],
)
def test_rds_token_rejections(aws: AwsFixture, mutate: Callable[[str], str], overrides: dict[str, object], reason: str) -> None:
    creds = aws.assume(aws.allowed_role_arn)
    token = aws.rds_client(creds).generate_db_auth_token(DB_HOST, 5432, "app_user", REGION)
    with pytest.raises(TokenError, match=reason):
        _verify_rds(mutate(token), aws, **overrides)


def test_rds_token_time_window_and_unknown_keys(aws: AwsFixture) -> None:
    creds = aws.assume(aws.allowed_role_arn)
    token = aws.rds_client(creds).generate_db_auth_token(DB_HOST, 5432, "app_user", REGION)
    signed = _signed_at(token)
    assert _verify_rds(token, aws, now=signed + dt.timedelta(seconds=899))
    with pytest.raises(TokenError, match="expired"):
        _verify_rds(token, aws, now=signed + dt.timedelta(seconds=901))
    assert _verify_rds(token, aws, now=signed - dt.timedelta(minutes=4))  # clock skew tolerated
    with pytest.raises(TokenError, match="future"):
        _verify_rds(token, aws, now=signed - dt.timedelta(minutes=6))
    with pytest.raises(TokenError, match="unknown access key"):
        _verify_rds(token, aws, registry=CredentialRegistry())
    # Credentials signed with the right secret but registered with another session token are refused.
    other = CredentialRegistry()
    other.register(creds.access_key, creds.secret_key, "another-session", aws.allowed_role_arn, ACCOUNT_ID)
    with pytest.raises(TokenError, match="session token"):
        _verify_rds(token, aws, registry=other)
    # Expired signing credentials are refused even if the token itself is fresh.
    expired = CredentialRegistry()
    expired.register(
        creds.access_key, creds.secret_key, creds.token, aws.allowed_role_arn, ACCOUNT_ID, signed - dt.timedelta(seconds=1)
    )
    with pytest.raises(TokenError, match="credentials expired"):
        _verify_rds(token, aws, registry=expired, now=signed)


def _botocore_elasticache_token(creds: Credentials, cache_name: str, user_id: str) -> str:
    request = AWSRequest(method="GET", url=f"http://{cache_name}/", params={"Action": "connect", "User": user_id})
    SigV4QueryAuth(creds, "elasticache", REGION, expires=900).add_auth(request)
    return request.prepare().url.removeprefix("http://")


def test_elasticache_token_interoperates_with_botocore(aws: AwsFixture) -> None:
    creds = aws.assume(aws.allowed_role_arn)
    reference = _botocore_elasticache_token(creds, REPLICATION_GROUP_ID, "payments-app")
    ours = generate_elasticache_token(creds, REPLICATION_GROUP_ID, "payments-app", REGION, now=_signed_at(reference))
    # Same parameters, same signature: the two generators are interchangeable.
    assert dict(parse_qsl(ours.split("?", 1)[1])) == dict(parse_qsl(reference.split("?", 1)[1]))
    assert ours.startswith(f"{REPLICATION_GROUP_ID}/?Action=connect&User=payments-app&")
    for token in (reference, ours):
        principal = verify_elasticache_token(
            token, cache_name=REPLICATION_GROUP_ID, user_id="payments-app", region=REGION, registry=aws.registry
        )
        assert principal.role_arn == aws.allowed_role_arn
        assert principal.user == "payments-app"


def test_elasticache_token_rejections(aws: AwsFixture) -> None:
    creds = aws.assume(aws.allowed_role_arn)
    token = generate_elasticache_token(creds, REPLICATION_GROUP_ID, "payments-app", REGION)
    common = {"region": REGION, "registry": aws.registry}
    with pytest.raises(TokenError, match="User does not match"):
        verify_elasticache_token(token, cache_name=REPLICATION_GROUP_ID, user_id="other", **common)  # type: ignore[arg-type]
    with pytest.raises(TokenError, match="not other-cache"):
        verify_elasticache_token(token, cache_name="other-cache", user_id="payments-app", **common)  # type: ignore[arg-type]
    with pytest.raises(TokenError, match="signature"):
        forged = token.replace("User=payments-app", "User=admin-app")
        verify_elasticache_token(forged, cache_name=REPLICATION_GROUP_ID, user_id="admin-app", **common)  # type: ignore[arg-type]
    rds_style = aws.rds_client(creds).generate_db_auth_token(REPLICATION_GROUP_ID, 6379, "payments-app", REGION)
    with pytest.raises(TokenError):
        verify_elasticache_token(rds_style, cache_name=REPLICATION_GROUP_ID, user_id="payments-app", **common)  # type: ignore[arg-type]
    old = generate_elasticache_token(
        creds, REPLICATION_GROUP_ID, "payments-app", REGION, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    )
    with pytest.raises(TokenError, match="expired"):
        verify_elasticache_token(old, cache_name=REPLICATION_GROUP_ID, user_id="payments-app", **common)  # type: ignore[arg-type]


def test_policy_checker_reads_inline_and_managed_policies(aws: AwsFixture) -> None:
    checker = PolicyChecker(aws.iam)
    app_user = rds_dbuser_arn(REGION, ACCOUNT_ID, CLUSTER_RESOURCE_ID, "app_user")
    assert checker.allows(aws.allowed_role_arn, "rds-db:connect", app_user)
    assert checker.allows(aws.allowed_role_arn, "RDS-DB:Connect", app_user)  # action names are case-insensitive
    assert not checker.allows(aws.allowed_role_arn, "rds-db:connect", app_user.replace("app_user", "admin"))
    assert not checker.allows(aws.denied_role_arn, "rds-db:connect", app_user)
    assert not checker.allows("arn:aws:iam::123456789012:role/does-not-exist", "rds-db:connect", app_user)

    # A managed policy attached to the denied role grants it access (after the cache is invalidated).
    policy_arn = aws.iam.create_policy(
        PolicyName="reporting-db",
        PolicyDocument=policy_document(
            {"Effect": "Allow", "Action": "rds-db:*", "Resource": f"arn:aws:rds-db:*:*:dbuser:{CLUSTER_RESOURCE_ID}/report_?"}
        ),
    )["Policy"]["Arn"]
    aws.iam.attach_role_policy(RoleName="reporting-task", PolicyArn=policy_arn)
    try:
        report = rds_dbuser_arn(REGION, ACCOUNT_ID, CLUSTER_RESOURCE_ID, "report_1")
        assert not checker.allows(aws.denied_role_arn, "rds-db:connect", report)  # still cached
        checker.invalidate(aws.denied_role_arn)
        assert checker.allows(aws.denied_role_arn, "rds-db:connect", report)
        assert not checker.allows(aws.denied_role_arn, "rds-db:connect", report + "0")  # '?' is exactly one character
    finally:
        aws.iam.detach_role_policy(RoleName="reporting-task", PolicyArn=policy_arn)
        aws.iam.delete_policy(PolicyArn=policy_arn)


def test_policy_cache_expires(aws: AwsFixture) -> None:
    clock = [0.0]
    checker = PolicyChecker(aws.iam, cache_seconds=5, clock=lambda: clock[0])
    arn = rds_dbuser_arn(REGION, ACCOUNT_ID, CLUSTER_RESOURCE_ID, "late_user")
    assert not checker.allows(aws.denied_role_arn, "rds-db:connect", arn)
    aws.iam.put_role_policy(
        RoleName="reporting-task",
        PolicyName="late",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "rds-db:connect", "Resource": arn}}
        ),
    )
    try:
        clock[0] = 4.9
        assert not checker.allows(aws.denied_role_arn, "rds-db:connect", arn)
        clock[0] = 5.1
        assert checker.allows(aws.denied_role_arn, "rds-db:connect", arn)
    finally:
        aws.iam.delete_role_policy(RoleName="reporting-task", PolicyName="late")


def test_policy_evaluation_rules() -> None:
    arn = "arn:aws:rds-db:us-east-1:123456789012:dbuser:cluster-X/app_user"
    allow = {"Effect": "Allow", "Action": ["rds-db:connect"], "Resource": "arn:aws:rds-db:us-east-1:123456789012:dbuser:*/*"}
    deny = {"Effect": "Deny", "Action": "rds-db:*", "Resource": "*"}
    assert evaluate([allow], "rds-db:connect", arn)
    assert not evaluate([allow, deny], "rds-db:connect", arn)  # explicit deny wins
    assert not evaluate([deny, allow], "rds-db:connect", arn)
    assert not evaluate([], "rds-db:connect", arn)  # implicit deny
    assert not evaluate([{**allow, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}], "rds-db:connect", arn)
    assert not evaluate([allow, {**deny, "Condition": {"StringEquals": {"aws:username": "x"}}}], "rds-db:connect", arn)
    assert evaluate([{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}], "rds-db:connect", arn)
    assert not evaluate([allow, {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}], "rds-db:connect", arn)
    assert not evaluate(
        [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": "arn:aws:rds-db:*:*:dbuser:*/APP_USER"}],
        "rds-db:connect",
        arn,
    )


def test_role_name_from_arn() -> None:
    assert role_name_from_arn("arn:aws:iam::123456789012:role/service/payments-api") == "payments-api"
    assert role_name_from_arn("arn:aws:sts::123456789012:assumed-role/payments-api/session-1") == "payments-api"
    with pytest.raises(ValueError):
        role_name_from_arn("arn:aws:iam::123456789012:user/alice")
