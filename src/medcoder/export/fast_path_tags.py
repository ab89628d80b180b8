"""The registry tags of a packaged ONNX fast path: written at registration (export.fast_packaging), read by the
promotion gate (registry.gates, `min_fast_path_agreement`). Their own module so the gate reads the names without
importing the export stack (torch, ONNX Runtime)."""

TAG_PATH = "fast_path"  # onnx-fp32 | onnx-int8
FAST_PATH_AGREEMENT = "fast_path_agreement"  # share of notes whose code set equals the float path's
TAG_NOTES = "fast_path_notes"  # how many notes that share is over
TAG_SAMPLE = "fast_path_sample"  # which notes (the sample's name)
