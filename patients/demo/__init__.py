"""The demo: a synthetic longitudinal cohort with phantom clips (``manage.py demo_seed``)."""
