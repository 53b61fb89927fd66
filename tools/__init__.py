"""Platform-team tooling: offline evaluation, local emulator deployment, benchmarks, compliance."""
