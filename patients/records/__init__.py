"""Clinical records: patients, exams, clinical information and blood gases, and patient time."""
