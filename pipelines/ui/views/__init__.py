"""One module per page, each with a ``page()`` that reads the sidebar's choice."""
