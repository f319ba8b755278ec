"""Training: self-supervised pre-training and fine-tuning on real images."""
