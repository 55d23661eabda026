"""Visual question generation data: one record per image (:class:`VQGImage`) from mumo scenes or VQG-COCO."""
