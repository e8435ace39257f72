"""Operations: configuration check, schema and backups, health and metrics, logs, the audit
log's retention."""
