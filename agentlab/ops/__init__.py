"""Operations: OpenTelemetry traces, Prometheus metrics and SLOs with error budgets."""
