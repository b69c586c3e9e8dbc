"""moodlens core: all logic, importable and testable without Streamlit."""

import contextlib

# streamlit-webrtc's SRTP library (pylibsrtp) runs an HMAC self-test when it loads. If TensorFlow
# was loaded first, that call binds to TensorFlow's exported BoringSSL symbols and the process
# segfaults. Loading pylibsrtp before anything in core imports TensorFlow avoids the clash.
with contextlib.suppress(ImportError):  # the live page's dependency is optional for core
    import pylibsrtp  # noqa: F401
