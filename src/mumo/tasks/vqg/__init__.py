"""Visual question generation: MC-BMN trained on mumo scenes or VQG-COCO (docs/vqg.md)."""
