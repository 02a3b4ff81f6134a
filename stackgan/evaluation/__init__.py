"""Scores of generated images: inception score, FID, and the CUB classifier they rest on."""
