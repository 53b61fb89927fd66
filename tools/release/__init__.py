"""Release tooling: put the service images into the stack's ECR repositories before the services start.

The stack creates its own ECR repositories and every task runs ``<repository>:<imageTag>``. On a new
account the repositories do not exist before the first ``pulumi up``, and the services cannot start
without their images, so the first deployment is three steps (README, "Deploying to AWS"):

1. ``python -m tools.release targets --stack <stack>``: the ``--target`` arguments that make
   ``pulumi up`` create only the repositories and what they need (the data key, the parent components);
2. ``python -m tools.release push --stack <stack> --tag <imageTag>``: build each image, the
   target ``<name>`` of ``services/Dockerfile``, and push it (docker and the aws CLI);
3. ``python -m tools.release check --stack <stack>``: every image a task definition names exists in
   ECR; then the full ``pulumi up``.

The local deployment performs the same push against the emulator (:func:`push_to_emulator`), in place of
docker, so the same check runs in the integration tests.
"""
