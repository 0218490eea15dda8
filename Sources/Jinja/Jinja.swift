// Jinja: see README.
