"""The api service: ScalePayments' public REST API, in front of payment and notification."""
