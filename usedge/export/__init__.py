"""Export: ONNX graphs with usedge's output names (bundles and INT8 come with the export issue)."""
