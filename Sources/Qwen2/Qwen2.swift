// Qwen2: see README.
