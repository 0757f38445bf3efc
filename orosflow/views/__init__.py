"""One read model per role: counselor, intake, auditor."""
