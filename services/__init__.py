"""ScalePayments reference services: api, payment and notification (FastAPI on uvicorn) and the migrate job.

Kept import-free on purpose: ``python -m services.common.healthcheck`` imports this package first and must start fast.
"""
