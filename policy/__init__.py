"""ScalePayments PCI DSS CrossGuard policy pack (rules in :mod:`policy.rules`)."""
