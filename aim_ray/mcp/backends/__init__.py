"""What providers and tools stand on: safe file reads, guarded outbound HTTP, PostgreSQL,
embeddings, secrets, and backend values as JSON."""
