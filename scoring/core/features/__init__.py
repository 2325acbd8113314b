"""From frames to features: preprocessing (the model's crop), hand-crafted features, THE featuriser, the recipe."""
