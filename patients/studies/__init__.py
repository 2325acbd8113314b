"""Studies and access: a study's settings and protocol, its members and what each role may do."""
