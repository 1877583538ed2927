"""`segpipe ui`: a Streamlit app over the real registry, runs and model server.

The page modules in ``views/`` stay thin; what they show comes from plain-Python helpers
(``registry``, ``scenes``, ``render``, ``areas``, ``prediction``) that are tested without a
browser. ``app.py`` is the Streamlit entry point, ``command.py`` the CLI command that starts
it. Nothing in serving/ imports this package."""
