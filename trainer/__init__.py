"""The causal-masking objective, the model, the training loop and infilling inference."""
