"""The audit trail: who did what to which object of a study, when and from where."""
