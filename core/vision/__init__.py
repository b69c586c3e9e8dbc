"""Faces in frames: detection, tracking, and the live frame -> emotions pipeline.

detector = FaceDetector()                       # OpenCV; works on any BGR/RGB/gray frame
boxes = detector.detect(frame)                  # [FaceBox(x, y, w, h), ...]
analyzer = LiveAnalyzer(model, detector)        # streamlit-webrtc's frame callback side
annotated = analyzer.process(frame); analyzer.snapshot()
results = analyze_still(image, model, detector)   # one photo: every face, largest first
"""

from core.lazy import lazy_exports

_WHERE = {
    "FaceBox": "faces",
    "FaceDetector": "faces",
    "ImageError": "faces",
    "decode_image": "faces",
    "prepare_face": "faces",
    "FaceTracker": "tracking",
    "FaceResult": "live",
    "LiveAnalyzer": "live",
    "LiveSnapshot": "live",
    "analyze_still": "live",
    "annotate": "live",
    "make_frame_callback": "live",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
