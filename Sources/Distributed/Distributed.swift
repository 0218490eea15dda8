// Distributed: see README.
