"""fountain studio: a local web app to write a spec, watch a run and review the data.

:func:`fountain.studio.app.create_app` builds the ASGI app (Starlette) over the opened spec
folders; ``fountain studio`` serves it with uvicorn. Pages: ``spec.py`` (edit, validate, render,
plan, save), ``runs.py`` (start, watch, stop a run in a subprocess), ``review.py`` (browse and
hand-review the data, the report); ``security.py`` holds the rules every request goes through.
"""
