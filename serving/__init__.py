"""The exported generator: SavedModel export with serving signatures (`export`), TF Serving
warm-up records (`warmup`), Python loading (`generator.load_generator`) and request builders for
TF Serving's REST and gRPC APIs (`client`)."""
