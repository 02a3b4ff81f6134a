"""Evaluator: inception score, FID, class accuracy and Stage-I/II refinement of a generator on
the test captions, and its blessing (against the real images and the last blessed model)."""
