"""Evaluator: inception score and FID of a generator on the test captions, and its blessing."""
