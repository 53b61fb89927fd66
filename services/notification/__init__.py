"""The notification service: records payment events (exactly once per event id) for delivery to merchants."""
