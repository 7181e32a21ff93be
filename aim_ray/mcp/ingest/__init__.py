"""Putting documents into a Chroma or PostgreSQL provider (``aim-ray mcp ingest``, and the
context deployment's ingest on start).

* ``documents``: which files a path names, and each file read as text (text, Markdown,
  reStructuredText, HTML, PDF).
* ``chunks``: text cut into overlapping chunks with stable ids.
* ``stores``: the Chroma collection or PostgreSQL table the chunks are upserted into.
* ``run``: ``ingest``, the whole job with progress and a summary.
"""
