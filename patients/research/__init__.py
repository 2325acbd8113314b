"""Research: the cohort export, AI-vs-rater agreement and the public-dataset importers."""
