"""Export (``usedge export``): a model into a verified bundle for a target — the fp32 ONNX, the FP16 ONNX for
TensorRT targets, the gated INT8 Q/DQ graph (PTQ, then QAT and the sensitivity fallback when it fails the gate),
parity on every CPU runtime, the int8 check, latency, the report and model card (:mod:`.pipeline`, :mod:`.report`);
the export side of the built-in default (:mod:`.defaults`) and the Triton model repository (:mod:`.triton`)."""
