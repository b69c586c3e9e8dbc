"""moodlens core: all logic, importable and testable without Streamlit."""

import contextlib
import os

# OpenCV decodes up to 2**30 pixels by default: 4 GB for a small, highly compressed upload. The
# photo decoder refuses more than 40 megapixels from the header; this caps OpenCV itself too
# (read when cv2 loads: core is imported first). Equal to core.vision.faces.MAX_IMAGE_PIXELS.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(40_000_000))

# streamlit-webrtc's SRTP library (pylibsrtp) runs an HMAC self-test when it loads. If TensorFlow
# was loaded first, that call binds to TensorFlow's exported BoringSSL symbols and the process
# segfaults. Loading pylibsrtp before anything in core imports TensorFlow avoids the clash.
with contextlib.suppress(ImportError):  # the live page's dependency is optional for core
    import pylibsrtp  # noqa: F401
