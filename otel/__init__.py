"""OpenTelemetry traces from a recording."""
