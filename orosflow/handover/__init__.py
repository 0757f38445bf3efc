"""The handover domain: validation, submission, routing call, delivery, lifecycle, escalation."""
