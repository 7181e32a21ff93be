"""The engine layer: what runs for a model entry (its ``LLMConfig`` dict) and where its
weights come from."""
