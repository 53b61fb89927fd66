"""Code shared by every service: the configuration contract, logging, AWS auth tokens and the HTTP plumbing.

Kept import-free on purpose: the container health check imports this package and must start fast.
"""
