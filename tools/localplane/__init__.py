"""The local data plane: real servers and AWS-auth stand-ins that let a local (moto) deployment run the platform.

PostgreSQL and Valkey stand in for Aurora PostgreSQL and ElastiCache for Redis; TLS/IAM-auth fronts in front of them
make clients connect exactly as on AWS (TLS required, RDS and ElastiCache IAM auth tokens, the RDS master password from
Secrets Manager). Each module's docstring lists how its stand-in differs from the AWS service.
"""
