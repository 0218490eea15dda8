// Training: see README.
