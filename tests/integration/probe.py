"""Run inside a task's environment (the local platform's exec): may this task log in to a data store?

    python -m tests.integration.probe database   # DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_SSL_MODE, DB_SSL_ROOT_CERT
    python -m tests.integration.probe cache      # REDIS_HOST, REDIS_PORT, REDIS_USER, REDIS_CACHE_NAME, SSL_CERT_FILE

It signs an IAM token with the task role's credentials exactly as the services do (``services.common.auth``)
and logs in over TLS; it prints one JSON object, ``{"ok": true, "user": ...}`` or ``{"ok": false, "error": ...}``,
and exits 0 either way (the answer is the output).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import psycopg
import redis

from services.common.auth import ElastiCacheTokenSigner, RdsTokenGenerator


def database() -> dict[str, Any]:
    """Log in to PostgreSQL as DB_USER with an RDS IAM token."""
    env = os.environ
    host, port, user, region = env["DB_HOST"], int(env["DB_PORT"]), env["DB_USER"], env["AWS_REGION"]
    token = RdsTokenGenerator(host, port, user, region).token()
    with psycopg.connect(
        host=host,
        port=port,
        dbname=env["DB_NAME"],
        user=user,
        password=token,
        sslmode=env["DB_SSL_MODE"],
        sslrootcert=env["DB_SSL_ROOT_CERT"],
        connect_timeout=5,
    ) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    return {"ok": True, "user": row[0] if row else None}


def cache() -> dict[str, Any]:
    """Log in to Redis as REDIS_USER with an ElastiCache IAM token over TLS."""
    env = os.environ
    user = env["REDIS_USER"]
    token = ElastiCacheTokenSigner(env["REDIS_CACHE_NAME"], user, env["AWS_REGION"]).token()
    client = redis.Redis(
        host=env["REDIS_HOST"],
        port=int(env["REDIS_PORT"]),
        username=user,
        password=token,
        ssl=True,
        ssl_ca_certs=env["SSL_CERT_FILE"],
        socket_timeout=5,
    )
    try:
        # PING is all the payment user's access string allows besides its own keys (+@connection).
        return {"ok": bool(client.ping()), "user": user}
    finally:
        client.close()


def main() -> int:
    """Probe the data store named on the command line."""
    try:
        result = {"database": database, "cache": cache}[sys.argv[1]]()
    except (psycopg.Error, redis.RedisError, OSError) as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
