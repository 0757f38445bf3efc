"""Who may sign in, with which role and units."""
