// Tokenizer: see README.
