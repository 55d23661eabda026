"""Tasks: data + model + loss + evaluation, wired to the training loop."""
