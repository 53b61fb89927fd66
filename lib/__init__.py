"""ScalePayments platform: the Pulumi program's library (configuration, naming, components)."""
