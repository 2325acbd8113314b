"""Network definitions: the EfficientNet-Lite0 backbone of the scorer, ResNet-50 (speed reference)."""
