"""Everything a Streamlit AppTest page shows as text, for assertions on what a person sees."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def page_text(app: AppTest) -> str:
    """Markdown, titles, captions, alerts and exceptions of `app`'s last run, one per line."""
    parts = [m.value for m in app.markdown] + [e.value for e in app.info]
    parts += [e.value for e in app.error] + [e.value for e in app.warning]
    parts += [c.value for c in app.caption] + [t.value for t in app.title]
    parts += [s.value for s in app.success] + [str(e.value) for e in app.exception]
    return "\n".join(str(p) for p in parts)
