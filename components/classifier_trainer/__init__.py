"""ClassifierTrainer: fine-tunes MobileNetV2 on CUB classes for the inception score and FID."""
